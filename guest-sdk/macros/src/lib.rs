//! The `#[function]` attribute of `wisp-sdk`. Use it as `wisp_sdk::function`; this crate is an
//! implementation detail.
//!
//! The expansion keeps the user's function as written and adds a hidden export next to it:
//!
//! ```text
//! #[doc(hidden)]
//! #[unsafe(export_name = "ping")]
//! pub extern "C" fn __wisp_export_ping(__wisp_event_id: u32) -> u32 {
//!     ::wisp_sdk::__private::invoke(__wisp_event_id, |__wisp_event: ::wisp_sdk::Event| {
//!         ping(__wisp_event)
//!     })
//! }
//! ```

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Error, FnArg, ItemFn, LitStr, ReturnType};

/// Makes a function over `wisp_sdk::Event` callable by the host. See `wisp_sdk::function`.
#[proc_macro_attribute]
pub fn function(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr.into(), item.into())
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// The whole expansion, on `proc_macro2` tokens so unit tests can run it.
fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let args = parse_args(attr)?;
    let function: ItemFn = syn::parse2(item)?;
    check_signature(&function)?;

    let ident = &function.sig.ident;
    let export_name = match args.name {
        Some(name) => name,
        None => LitStr::new(&ident.unraw().to_string(), ident.span()),
    };
    let export_ident = format_ident!("__wisp_export_{}", ident.unraw());

    // Span each part at what the user wrote, so a wrong argument type is reported at the
    // argument and an unsupported return type at the return type.
    let arg_span = match function.sig.inputs.first() {
        Some(FnArg::Typed(arg)) => arg.ty.span(),
        _ => ident.span(),
    };
    let return_span = match &function.sig.output {
        ReturnType::Default => ident.span(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let user_call = quote_spanned! {arg_span=>
        |__wisp_event: ::wisp_sdk::Event| #ident(__wisp_event)
    };
    let call = quote_spanned! {return_span=>
        ::wisp_sdk::__private::invoke(__wisp_event_id, #user_call)
    };

    Ok(quote! {
        #function

        #[doc(hidden)]
        #[unsafe(export_name = #export_name)]
        pub extern "C" fn #export_ident(__wisp_event_id: u32) -> u32 {
            #call
        }
    })
}

/// The attribute's arguments: nothing, or `name = "export"`.
#[derive(Default)]
struct Args {
    name: Option<LitStr>,
}

fn parse_args(attr: TokenStream2) -> syn::Result<Args> {
    let mut args = Args::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            if args.name.is_some() {
                return Err(meta.error("`name` is given more than once"));
            }
            let name: LitStr = meta.value()?.parse()?;
            if name.value().is_empty() {
                return Err(Error::new(name.span(), "the export name cannot be empty"));
            }
            args.name = Some(name);
            Ok(())
        } else {
            Err(meta.error("unknown argument; the only one is `name = \"export_name\"`"))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(args)
}

/// Refuses what the export cannot call: it passes one `Event` and needs a plain, synchronous,
/// non-generic function.
fn check_signature(function: &ItemFn) -> syn::Result<()> {
    let sig = &function.sig;
    let plain = "a `#[wisp_sdk::function]` must be a plain `fn name(event: Event)`";
    if let Some(token) = &sig.asyncness {
        return Err(Error::new(
            token.span(),
            format!("{plain}: async functions are not supported; the host calls it synchronously"),
        ));
    }
    if let Some(token) = &sig.unsafety {
        return Err(Error::new(
            token.span(),
            format!("{plain}: remove `unsafe`; the export calls it from safe code"),
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(Error::new(
            abi.span(),
            format!("{plain}: remove the `extern` ABI; the macro writes the export"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(Error::new(
            sig.generics.span(),
            format!("{plain}: generic functions are not supported"),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(Error::new(
            variadic.span(),
            format!("{plain}: variadic functions are not supported"),
        ));
    }
    let mut inputs = sig.inputs.iter();
    match (inputs.next(), inputs.next()) {
        (Some(FnArg::Typed(_)), None) => Ok(()),
        (Some(FnArg::Receiver(receiver)), _) => Err(Error::new(
            receiver.span(),
            format!("{plain}: it cannot take `self`; write a free function"),
        )),
        (None, _) => Err(Error::new(
            sig.paren_token.span.join(),
            format!("{plain}: it takes exactly one argument, the `Event`"),
        )),
        (Some(_), Some(extra)) => Err(Error::new(
            extra.span(),
            format!("{plain}: it takes exactly one argument, the `Event`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(attr: &str, item: &str) -> syn::Result<String> {
        let attr: TokenStream2 = attr.parse().expect("test attr tokens");
        let item: TokenStream2 = item.parse().expect("test item tokens");
        expand(attr, item).map(|tokens| tokens.to_string())
    }

    fn error(attr: &str, item: &str) -> String {
        expand_str(attr, item)
            .expect_err("expansion should fail")
            .to_string()
    }

    #[test]
    fn default_export_name_is_the_function_name() {
        let out = expand_str("", "fn ping(e: Event) {}").unwrap();
        assert!(out.contains("export_name = \"ping\""), "{out}");
        assert!(
            out.contains("fn __wisp_export_ping (__wisp_event_id : u32) -> u32"),
            "{out}"
        );
        assert!(
            out.contains(
                "invoke (__wisp_event_id , | __wisp_event : :: wisp_sdk :: Event | ping (__wisp_event))"
            ),
            "{out}"
        );
        // The user's function is kept.
        assert!(out.contains("fn ping (e : Event) { }"), "{out}");
    }

    #[test]
    fn name_argument_sets_the_export_name() {
        let out = expand_str(
            r#"name = "getWebSocketURL""#,
            "fn url(e: Event) -> Result<(), Error> { Ok(()) }",
        )
        .unwrap();
        assert!(out.contains("export_name = \"getWebSocketURL\""), "{out}");
        assert!(out.contains("__wisp_export_url"), "{out}");
    }

    #[test]
    fn raw_identifiers_export_without_the_prefix() {
        let out = expand_str("", "fn r#match(e: Event) {}").unwrap();
        assert!(out.contains("export_name = \"match\""), "{out}");
        assert!(out.contains("__wisp_export_match"), "{out}");
    }

    #[test]
    fn refuses_bad_arguments() {
        assert!(error("nme = \"x\"", "fn f(e: Event) {}").contains("unknown argument"));
        assert!(error("name = 3", "fn f(e: Event) {}").contains("expected string literal"));
        assert!(error("name = \"\"", "fn f(e: Event) {}").contains("cannot be empty"));
        assert!(error("name = \"a\", name = \"b\"", "fn f(e: Event) {}").contains("more than once"));
    }

    #[test]
    fn refuses_unsupported_signatures() {
        let cases = [
            ("async fn f(e: Event) {}", "async functions"),
            ("unsafe fn f(e: Event) {}", "remove `unsafe`"),
            ("extern \"C\" fn f(e: Event) {}", "remove the `extern` ABI"),
            ("fn f<T>(e: Event) {}", "generic functions"),
            ("fn f(e: Event) where Event: Copy {}", "generic functions"),
            ("fn f() {}", "exactly one argument"),
            ("fn f(self) {}", "cannot take `self`"),
            ("fn f(e: Event, x: u32) {}", "exactly one argument"),
        ];
        for (item, expected) in cases {
            let message = error("", item);
            assert!(message.contains(expected), "{item}: {message}");
        }
    }

    #[test]
    fn refuses_non_functions() {
        assert!(expand_str("", "struct S;").is_err());
    }
}
