//! Compile-time behaviour of `#[require_api_key]`: the handler shapes it must accept, and the
//! error a user sees for each misuse. Regenerate the `.stderr` files with `TRYBUILD=overwrite`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
