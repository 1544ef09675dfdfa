//! Taubyte's errno numbers, as both of its SDKs number them.
//!
//! Every host call returns one of these as an i32 (0 = success). The numbers are the
//! positions in Taubyte's generated errno list (go-sdk `errno/types.go`, an `iota` from 0,
//! 126 names); its Rust SDK has the same names for 0 to 116. Guests compare against exactly
//! these numbers, so they never change; a code without a name here is [`Errno::Unknown`].

use core::fmt;

macro_rules! errnos {
    ($( $code:literal $variant:ident = $name:literal, $text:literal; )*) => {
        /// An errno, as a host call returns it and a guest reads it.
        ///
        /// ```
        /// use wisp_abi::Errno;
        ///
        /// assert_eq!(Errno::from_code(8), Errno::Eof);
        /// assert_eq!(Errno::HeaderNotFound.code(), 16);
        /// assert_eq!(Errno::Eof.taubyte_name(), Some("ErrorEOF"));
        /// assert_eq!(Errno::from_code(999), Errno::Unknown(999));
        /// ```
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Errno {
            $(
                #[doc = concat!(stringify!($code), ": ", $text, " (Taubyte's `", $name, "`).")]
                $variant,
            )*
            /// A code Taubyte's list does not name, kept so that nothing the host says is lost.
            Unknown(u32),
        }

        impl Errno {
            /// Every named errno, in code order.
            pub const ALL: &'static [Errno] = &[$(Errno::$variant),*];

            /// The number handed across the ABI.
            pub const fn code(self) -> u32 {
                match self {
                    $(Errno::$variant => $code,)*
                    Errno::Unknown(code) => code,
                }
            }

            /// The errno numbered `code`.
            pub const fn from_code(code: u32) -> Errno {
                match code {
                    $($code => Errno::$variant,)*
                    other => Errno::Unknown(other),
                }
            }

            /// The constant's name in Taubyte's SDKs (`ErrorEOF`), or `None` for
            /// [`Errno::Unknown`].
            pub const fn taubyte_name(self) -> Option<&'static str> {
                match self {
                    $(Errno::$variant => Some($name),)*
                    Errno::Unknown(_) => None,
                }
            }

            /// What the errno means, in a few lowercase words.
            pub const fn text(self) -> &'static str {
                match self {
                    $(Errno::$variant => $text,)*
                    Errno::Unknown(_) => "unknown error",
                }
            }
        }
    };
}

impl Errno {
    /// The value a host call returns: 0 for success, else the errno's code.
    pub fn to_i32(result: Result<(), Errno>) -> i32 {
        match result {
            Ok(()) => 0,
            Err(errno) => errno.code() as i32,
        }
    }
}

impl From<u32> for Errno {
    fn from(code: u32) -> Self {
        Errno::from_code(code)
    }
}

impl From<Errno> for u32 {
    fn from(errno: Errno) -> Self {
        errno.code()
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

errnos! {
    0 Ok = "ErrorNone", "ok";
    1 EventNotFound = "ErrorEventNotFound", "event not found";
    2 BufferTooSmall = "ErrorBufferTooSmall", "buffer too small";
    3 AddressOutOfMemory = "ErrorAddressOutOfMemory", "address out of memory";
    4 NilAddress = "ErrorNilAddress", "nil address";
    5 HttpWrite = "ErrorHttpWrite", "http write failed";
    6 HttpReadBody = "ErrorHttpReadBody", "reading http body failed";
    7 CloseBody = "ErrorCloseBody", "closing http body failed";
    8 Eof = "ErrorEOF", "end of file";
    9 ReadHeaders = "ErrorReadHeaders", "read headers";
    10 ClientNotFound = "ErrorClientNotFound", "client not found";
    11 ParseUrlFailed = "ErrorParseUrlFailed", "parse url failed";
    12 MemoryWriteFailed = "ErrorMemoryWriteFailed", "memory write failed";
    13 HttpRequestFailed = "ErrorHttpRequestFailed", "http request failed";
    14 InvalidMethod = "ErrorInvalidMethod", "invalid method";
    15 NewRequestFailed = "ErrorNewRequestFailed", "new request failed";
    16 HeaderNotFound = "ErrorHeaderNotFound", "header not found";
    17 HttpWriteBodyFailed = "ErrorHttpWriteBodyFailed", "http write body failed";
    18 CidNotFoundOnIpfs = "ErrorCidNotFoundOnIpfs", "cid not found on ipfs";
    19 InvalidCid = "ErrorInvalidCid", "invalid cid";
    20 SubscribeFailed = "ErrorSubscribeFailed", "subscribe failed";
    21 PublishFailed = "ErrorPublishFailed", "publish failed";
    22 DatabaseCreateFailed = "ErrorDatabaseCreateFailed", "database create failed";
    23 DatabaseGetFailed = "ErrorDatabaseGetFailed", "database get failed";
    24 DatabasePutFailed = "ErrorDatabasePutFailed", "database put failed";
    25 DatabaseNotFound = "ErrorDatabaseNotFound", "database not found";
    26 DatabaseDeleteFailed = "ErrorDatabaseDeleteFailed", "database delete failed";
    27 DatabaseListFailed = "ErrorDatabaseListFailed", "database list failed";
    28 KeystoreCreateFailed = "ErrorKeystoreCreateFailed", "keystore create failed";
    29 DatabaseKeyNotFound = "ErrorDatabaseKeyNotFound", "database key not found";
    30 KeystoreNotFound = "ErrorKeystoreNotFound", "keystore not found";
    31 AddFileFailed = "ErrorAddFileFailed", "add file failed";
    32 GetFileFailed = "ErrorGetFileFailed", "get file failed";
    33 DeleteFileFailed = "ErrorDeleteFileFailed", "delete file failed";
    34 CloseFileFailed = "ErrorCloseFileFailed", "close file failed";
    35 FileNameNotFound = "ErrorFileNameNotFound", "file name not found";
    36 ListFileVersionsFailed = "ErrorListFileVersionsFailed", "list file versions failed";
    37 ListingUsedSpaceFailed = "ErrorListingUsedSpaceFailed", "listing used space failed";
    38 GetWebSocketUrlFailed = "ErrorGetWebSocketURLFailed", "getting websocket url failed";
    39 ByteConversionFailed = "ErrorByteConversionFailed", "byte conversion failed";
    40 ChannelNotFound = "ErrorChannelNotFound", "channel not found";
    41 NewStreamFailed = "ErrorNewStreamFailed", "new stream failed";
    42 CommandCreateFailed = "ErrorCommandCreateFailed", "command create failed";
    43 P2pSendFailed = "ErrorP2PSendFailed", "p2p send failed";
    44 P2pCommandNotFound = "ErrorP2PCommandNotFound", "p2p command not found";
    45 P2pProtocolNotFound = "ErrorP2PProtocolNotFound", "p2p protocol not found";
    46 P2pFromNotFound = "ErrorP2PFromNotFound", "p2p from not found";
    47 P2pToNotFound = "ErrorP2PToNotFound", "p2p to not found";
    48 P2pListenFailed = "ErrorP2PListenFailed", "p2p listen failed";
    49 MarshalDataFailed = "ErrorMarshalDataFailed", "marshal data failed";
    50 ZeroSize = "ErrorZeroSize", "zero size";
    51 EthereumNewClient = "ErrorEthereumNewClient", "ethereum new client";
    52 EthereumBlockNotFound = "ErrorEthereumBlockNotFound", "ethereum block not found";
    53 EthereumChainIdNotFound = "ErrorEthereumChainIdNotFound", "ethereum chain id not found";
    54 EthereumInvalidHexKey = "ErrorEthereumInvalidHexKey", "ethereum invalid hex key";
    55 EthereumNonceNotFound = "ErrorEthereumNonceNotFound", "ethereum nonce not found";
    56 EthereumGasPriceNotFound = "ErrorEthereumGasPriceNotFound", "ethereum gas price not found";
    57 EthereumGasTipCapNotFound = "ErrorEthereumGasTipCapNotFound", "ethereum gas tip cap not found";
    58 EthereumGasFeeCapNotFound = "ErrorEthereumGasFeeCapNotFound", "ethereum gas fee cap not found";
    59 EthereumGasNotFound = "ErrorEthereumGasNotFound", "ethereum gas not found";
    60 EthereumValueNotFound = "ErrorEthereumValueNotFound", "ethereum value not found";
    61 EthereumDataNotFound = "ErrorEthereumDataNotFound", "ethereum data not found";
    62 EthereumAddressNotFound = "ErrorEthereumAddressNotFound", "ethereum address not found";
    63 EthereumChainNotFound = "ErrorEthereumChainNotFound", "ethereum chain not found";
    64 EthereumHashNotFound = "ErrorEthereumHashNotFound", "ethereum hash not found";
    65 EthereumTransactionNotFound = "ErrorEthereumTransactionNotFound", "ethereum transaction not found";
    66 EthereumSendTransactionFailed = "ErrorEthereumSendTransactionFailed", "ethereum send transaction failed";
    67 EthereumMarshalJson = "ErrorEthereumMarshalJSON", "ethereum marshal json";
    68 EthereumMethodNotSupported = "ErrorEthereumMethodNotSupported", "ethereum method not supported";
    69 ConvertibleConversionFailed = "ErrorConvertibleConversionFailed", "convertible conversion failed";
    70 EthereumContractNotFound = "ErrorEthereumContractNotFound", "ethereum contract not found";
    71 EthereumParsingAbiFailed = "ErrorEthereumParsingAbiFailed", "ethereum parsing abi failed";
    72 EthereumParsingEcdsaFailed = "ErrorEthereumParsingECDSAFailed", "ethereum parsing ecdsa failed";
    73 EthereumBindTransactorFailed = "ErrorEthereumBindTransactorFailed", "ethereum bind transactor failed";
    74 EthereumCallContractFailed = "ErrorEthereumCallContractFailed", "ethereum call contract failed";
    75 EthereumParseInputTypeFailed = "ErrorEthereumParseInputTypeFailed", "ethereum parse input type failed";
    76 EthereumParseOutputTypeFailed = "ErrorEthereumParseOutputTypeFailed", "ethereum parse output type failed";
    77 EthereumContractMethodNotFound = "ErrorEthereumContractMethodNotFound", "ethereum contract method not found";
    78 EthereumInvalidContractMethodInput = "ErrorEthereumInvalidContractMethodInput", "ethereum invalid contract method input";
    79 EthereumInvalidContractMethodOutput = "ErrorEthereumInvalidContractMethodOutput", "ethereum invalid contract method output";
    80 EthereumUnsupportedDataType = "ErrorEthereumUnsupportedDataType", "ethereum unsupported data type";
    81 EthereumCannotCallPaidMutatorTransaction = "ErrorEthereumCannotCallPaidMutatorTransaction", "ethereum cannot call paid mutator transaction";
    82 EthereumCannotTransactFreeMethod = "ErrorEthereumCannotTransactFreeMethod", "ethereum cannot transact free method";
    83 EthereumTransactMethodFailed = "ErrorEthereumTransactMethodFailed", "ethereum transact method failed";
    84 EthereumDeployFailed = "ErrorEthereumDeployFailed", "ethereum deploy failed";
    85 EthereumSignFailed = "ErrorEthereumSignFailed", "ethereum sign failed";
    86 EthereumInvalidPublicKey = "ErrorEthereumInvalidPublicKey", "ethereum invalid public key";
    87 EthereumInvalidPrivateKey = "ErrorEthereumInvalidPrivateKey", "ethereum invalid private key";
    88 EthereumRecoverPubKeyFailed = "ErrorEthereumRecoverPubKeyFailed", "ethereum recover pub key failed";
    89 SizeMismatch = "ErrorSizeMismatch", "size mismatch";
    90 StorageGetMetaFailed = "ErrorStorageGetMetaFailed", "storage get meta failed";
    91 AddFileToIpfsFailed = "ErrorAddFileToIpfsFailed", "add file to ipfs failed";
    92 StorageNotFound = "ErrorStorageNotFound", "storage not found";
    93 StorageListFailed = "ErrorStorageListFailed", "storage list failed";
    94 CreatingNewFile = "ErrorCreatingNewFile", "creating new file";
    95 WritingFile = "ErrorWritingFile", "writing file";
    96 ContentNotFound = "ErrorContentNotFound", "content not found";
    97 ReadingFile = "ErrorReadingFile", "reading file";
    98 InvalidWhence = "ErrorInvalidWhence", "invalid whence";
    99 SeekingFile = "ErrorSeekingFile", "seeking file";
    100 CidNotFound = "ErrorCidNotFound", "cid not found";
    101 ResolverNotFound = "ErrorResolverNotFound", "resolver not found";
    102 FailedTxTLookup = "ErrorFailedTxTLookup", "failed tx t lookup";
    103 FailedAddressLookup = "ErrorFailedAddressLookup", "failed address lookup";
    104 FailedCnameLookup = "ErrorFailedCNAMELookup", "failed cname lookup";
    105 FailedMxLookup = "ErrorFailedMXLookup", "failed mx lookup";
    106 CachedResponseTypeNotFound = "ErrorCachedResponseTypeNotFound", "cached response type not found";
    107 CachedResponseNotFound = "ErrorCachedResponseNotFound", "cached response not found";
    108 SmartOpErrorResourceNotFound = "SmartOpErrorResourceNotFound", "smart op error resource not found";
    109 SmartOpErrorWrongResourceInterface = "SmartOpErrorWrongResourceInterface", "smart op error wrong resource interface";
    110 RandRead = "ErrorRandRead", "rand read";
    111 MemoryViewNotFound = "ErrorMemoryViewNotFound", "memory view not found";
    112 MemoryViewNotCloser = "ErrorMemoryViewNotCloser", "memory view not closer";
    113 SeekMethodNotFound = "ErrorSeekMethodNotFound", "seek method not found";
    114 InvalidBool = "ErrorInvalidBool", "invalid bool";
    115 FifoNotFound = "ErrorFifoNotFound", "fifo not found";
    116 FifoDatatypeInvalid = "ErrorFifoDatatypeInvalid", "fifo datatype invalid";
    117 P2pDiscoverFailed = "ErrorP2PDiscoverFailed", "p2p discover failed";
    118 EthereumEventNotFound = "ErrorEthereumEventNotFound", "ethereum event not found";
    119 EthereumWatchEventFailed = "ErrorEthereumWatchEventFailed", "ethereum watch event failed";
    120 EthereumRpcOptionUnmarshalFailed = "ErrorEthereumRPCOptionUnmarshalFailed", "ethereum rpc option unmarshal failed";
    121 EthereumMethodNotFoundInAbi = "ErrorEthereumMethodNotFoundInABI", "ethereum method not found in abi";
    122 EthereumInvalidParamsLength = "ErrorEthereumInvalidParamsLength", "ethereum invalid params length";
    123 JsonUnmarshalRawMessagesFailed = "ErrorJSONUnmarshalRawMessagesFailed", "json unmarshal raw messages failed";
    124 EthereumInvalidInputJson = "ErrorEthereumInvalidInputJSON", "ethereum invalid input json";
    125 Cap = "ErrorCap", "errno cap (not an error)";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_positions_in_the_list() {
        for (position, errno) in Errno::ALL.iter().enumerate() {
            assert_eq!(errno.code() as usize, position, "{errno:?}");
            assert_eq!(Errno::from_code(position as u32), *errno);
        }
        assert_eq!(Errno::ALL.len(), 126);
        assert_eq!(Errno::from_code(126), Errno::Unknown(126));
    }
}
