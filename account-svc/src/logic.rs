//! Pure rules of account-svc: what a valid registration is, and how names are compared.

use proto::account::{Field, FieldError};
use protocol::password::{AUTH_KEY_LEN, KdfCost};

use crate::keys;

/// Longest username, in characters.
pub const MAX_USERNAME_CHARS: usize = 8;

/// Longest email, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

/// Oldest age accepted.
pub const MAX_AGE: u32 = 150;

/// Length of an end-to-end public value.
pub const PUBLIC_KEY_LEN: usize = 256;

pub use service_kit::{name_key as username_key, normalize_name as normalize_username};

/// Returns the key an email is unique by: lowercase.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

fn field(field: Field, message: &str) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.to_owned(),
        taken: false,
    }
}

/// Checks a username: 1 to 8 letters or digits of any script, nothing else.
pub fn check_username(username: &str) -> Option<FieldError> {
    let username = normalize_username(username);
    if username.is_empty() {
        return Some(field(Field::Username, "enter a username"));
    }
    if username.chars().count() > MAX_USERNAME_CHARS {
        return Some(field(
            Field::Username,
            "a username has at most 8 characters",
        ));
    }
    if !username.chars().all(char::is_alphanumeric) {
        return Some(field(
            Field::Username,
            "a username has only letters and digits (no spaces or symbols)",
        ));
    }
    if !service_kit::single_script(&username) {
        return Some(field(
            Field::Username,
            "a username is written in one script (letters of one alphabet, and digits)",
        ));
    }
    None
}

/// Checks what stands for the password: a 32-byte authentication key, stretched with a
/// 16-byte salt at no less than `floor` (the server never sees the password itself, so its
/// length is the client's rule).
pub fn check_password(
    auth_key: &[u8],
    kdf: Option<&proto::account::KdfParams>,
    floor: &KdfCost,
) -> Option<FieldError> {
    if auth_key.len() != AUTH_KEY_LEN {
        return Some(field(Field::Password, "the password's key is malformed"));
    }
    match kdf {
        Some(kdf) if keys::kdf_acceptable(kdf, floor) => None,
        _ => Some(field(
            Field::Password,
            "the password was not stretched as this server asks; update the client",
        )),
    }
}

/// Checks an email: `local@domain.tld`, no spaces, a dotted domain with a TLD of 2+ letters.
pub fn check_email(email: &str) -> Option<FieldError> {
    let email = email.trim();
    if email.is_empty() {
        return Some(field(Field::Email, "enter an email address"));
    }
    let bad = || {
        Some(field(
            Field::Email,
            "an email address looks like name@host.tld",
        ))
    };
    if email.len() > MAX_EMAIL_BYTES || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad();
    }
    let Some((local, domain)) = email.split_once('@') else {
        return bad();
    };
    if local.is_empty() || domain.contains('@') {
        return bad();
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let Some(tld) = labels.last() else {
        return bad();
    };
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
        || tld.chars().count() < 2
        || !tld.chars().all(char::is_alphabetic)
    {
        return bad();
    }
    None
}

/// Checks an age: 0 to 150.
pub fn check_age(age: u32) -> Option<FieldError> {
    (age > MAX_AGE).then(|| field(Field::Age, "an age is between 0 and 150"))
}

/// Checks a sex value against the fixed set.
pub fn check_sex(sex: i32) -> Option<FieldError> {
    proto::common::Sex::try_from(sex)
        .is_err()
        .then(|| field(Field::Sex, "choose one of the offered values"))
}

/// Checks the end-to-end public key's length (the gateway checks its value against the group).
pub fn check_public_key(key: &[u8]) -> Option<FieldError> {
    (key.len() != PUBLIC_KEY_LEN).then(|| {
        field(
            Field::PublicKey,
            "the client's public key is missing or malformed",
        )
    })
}

/// Every problem of a registration's fields, one per field at most.
pub fn check_registration(
    request: &proto::account::RegisterRequest,
    floor: &KdfCost,
) -> Vec<FieldError> {
    [
        check_username(&request.username),
        check_password(&request.auth_key, request.kdf.as_ref(), floor),
        check_email(&request.email),
        check_sex(request.sex),
        check_age(request.age),
        check_public_key(&request.public_key),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The field error for a username or email already in use.
pub fn taken(which: Field) -> FieldError {
    let message = match which {
        Field::Email => "this email address is already registered",
        _ => "this username is taken",
    };
    FieldError {
        field: which.into(),
        message: message.to_owned(),
        taken: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in [
            "a",
            "alice",
            "小明",
            "用户12345",
            "Ünïcødé",
            "abcdefgh",
            "ＡＢＣ",
        ] {
            assert_eq!(check_username(ok), None, "{ok}");
        }
        for bad in [
            "",
            "abcdefghi",
            "a b",
            "a\tb",
            "a_b",
            "a-b",
            "a\u{0}",
            "九个字符九个字符九",
            // Latin with a Cyrillic а: mixed scripts.
            "\u{430}mudwe1",
            "paypаl",
        ] {
            assert!(check_username(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn look_alike_names_share_one_key() {
        let key = username_key("amudwe");
        for alike in ["AMUDWE", "ａｍｕｄｗｅ", "\u{430}mudwe", "arnudwe"] {
            assert_eq!(username_key(alike), key, "{alike:?}");
        }
        assert_ne!(username_key("amudwf"), key);
        assert_eq!(username_key("小明"), username_key("小明"));
    }

    #[test]
    fn usernames_are_counted_after_nfc() {
        // "é" as e + combining acute is one character after NFC.
        let decomposed = "e\u{301}".repeat(8);
        assert_eq!(check_username(&decomposed), None);
        assert_eq!(normalize_username(&decomposed).chars().count(), 8);
        assert_eq!(username_key("ALICE"), "alice");
    }

    #[test]
    fn emails() {
        for ok in [
            "a@b.cn",
            "first.last@example.com",
            "x+tag@mail.example.org",
            "名@例子.中国",
        ] {
            assert_eq!(check_email(ok), None, "{ok}");
        }
        for bad in [
            "", "a", "a@", "@b.cn", "a@b", "a@b.c", "a@@b.cn", "a b@c.cn", "a@b..cn", "a@b.c1",
            "a@-b.cn",
        ] {
            assert!(check_email(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn one_error_per_offending_field() {
        let request = proto::account::RegisterRequest {
            username: "way too long name".into(),
            auth_key: vec![0; 31],
            kdf: None,
            email: "nope".into(),
            sex: 9,
            age: 200,
            public_key: vec![1; 3],
        };
        let fields: Vec<i32> = check_registration(&request, &protocol::password::MIN_KDF)
            .iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                Field::Username,
                Field::Password,
                Field::Email,
                Field::Sex,
                Field::Age,
                Field::PublicKey
            ]
            .map(i32::from)
        );
    }
}
