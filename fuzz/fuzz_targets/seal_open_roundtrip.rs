//! Oracle: whatever is sealed opens to exactly the same session.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sealed_session::{Keyring, SealError, Sealer, Session};

static SEALER: LazyLock<Sealer> =
    LazyLock::new(|| Sealer::builder(Keyring::generate().unwrap()).max_token_len(64 * 1024).build().unwrap());

type Data = (String, Vec<u8>, Vec<i64>, Option<bool>);

fuzz_target!(|input: (Data, Option<(String, u64)>)| {
    let (data, user) = input;
    let mut session = Session::new(data.clone());
    if let Some((user, epoch)) = &user {
        session = session.with_user(user.clone(), *epoch);
    }
    let token = match SEALER.seal(&session) {
        Ok(token) => token,
        Err(SealError::TooLarge { .. }) => return,
        Err(other) => panic!("sealing failed: {other}"),
    };
    let opened = SEALER.open::<Data>(&token).expect("a sealed session must open");
    assert_eq!(opened.session().data(), &data);
    assert_eq!(opened.session().id(), session.id());
    assert_eq!(opened.session().user_id(), user.as_ref().map(|u| u.0.as_str()));
    assert_eq!(opened.session().epoch(), user.map_or(0, |u| u.1));
});
