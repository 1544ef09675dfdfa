//! The project hash that scopes topics and WebSocket URLs.
//!
//! As in Taubyte: the base58 form of a sha2-256 multihash of the project id followed
//! by the application name (empty for project-level resources). It is deterministic,
//! so WebSocket URLs stay valid across restarts and across nodes.

use sha2::{Digest, Sha256};

/// `Qm...`: base58(0x12 0x20 ‖ sha256(project_id ‖ application)).
pub fn project_hash(project_id: &str, application: Option<&str>) -> String {
    let mut digest = Sha256::new();
    digest.update(project_id.as_bytes());
    digest.update(application.unwrap_or("").as_bytes());
    let mut multihash = vec![0x12, 0x20];
    multihash.extend_from_slice(&digest.finalize());
    base58(&multihash)
}

/// Bitcoin-alphabet base58, as multihashes are written.
fn base58(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut digits: Vec<u8> = Vec::new();
    for &byte in bytes {
        let mut carry = byte as u32;
        for digit in digits.iter_mut() {
            carry += (*digit as u32) << 8;
            *digit = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    std::iter::repeat_n(b'1', zeros)
        .chain(digits.iter().rev().map(|&d| ALPHABET[d as usize]))
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_matches_known_vectors() {
        assert_eq!(base58(b"hello world"), "StV1DL6CwTryKyV");
        assert_eq!(base58(&[0, 0, 1]), "112");
    }

    #[test]
    fn hash_is_a_cidv0_style_multihash_and_depends_on_the_application() {
        let project = project_hash("QmProject", None);
        assert!(
            project.starts_with("Qm") && project.len() == 46,
            "{project}"
        );
        assert_eq!(project, project_hash("QmProject", None));
        assert_ne!(project, project_hash("QmProject", Some("app")));
    }
}
