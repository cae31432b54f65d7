use sha2::Digest;

use super::backend::Backend;

contract!(created_tokens_verify_and_only_their_hash_is_stored);

fn created_tokens_verify_and_only_their_hash_is_stored(backend: &Backend) {
    let store = backend.open();
    assert!(!store.verify_token("nst_nothing_yet").unwrap());
    let token = store.create_token("laptop").unwrap();
    let second = store.create_token("ci").unwrap();
    assert_ne!(token, second);
    assert!(token.starts_with("nst_"), "{token}");

    assert!(store.verify_token(&token).unwrap());
    assert!(store.verify_token(&second).unwrap());
    // Another store on the same database (the daemon, after the CLI created the token).
    assert!(backend.open().verify_token(&token).unwrap());
    assert!(!store.verify_token("").unwrap());
    assert!(!store.verify_token(&token[..token.len() - 1]).unwrap());
    assert!(!store.verify_token(&format!("{token}x")).unwrap());
    assert!(!store.verify_token(&token.to_uppercase()).unwrap());

    drop(store);
    let dump = backend.token_storage_dump();
    assert!(
        dump.contains("laptop"),
        "the dump must cover the tokens table"
    );
    let secret = token.trim_start_matches("nst_");
    assert!(!dump.contains(secret), "the token itself was stored");
    let hash: String = sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(dump.contains(&hash), "the token's SHA-256 was not stored");
}
