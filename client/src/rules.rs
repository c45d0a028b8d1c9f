//! The registration rules the server enforces, checked as the person types so each error
//! shows beside its field at once. The server checks again; its word is final.

use std::collections::HashMap;

use protocol::message::Field;
use unicode_normalization::UnicodeNormalization;

use crate::i18n::T;
use crate::state::RegisterForm;

/// A field of the registration form (the protocol's fields, and the repeated password).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    /// Username.
    Username,
    /// Password.
    Password,
    /// Password again.
    Repeat,
    /// Email.
    Email,
    /// Sex.
    Sex,
    /// Age.
    Age,
}

impl From<Field> for Input {
    fn from(field: Field) -> Self {
        match field {
            Field::Username => Self::Username,
            // The public key is made by the client; a problem with it is the password's form
            // error in the person's eyes (nothing they can fix but try again).
            Field::Password | Field::PublicKey => Self::Password,
            Field::Email => Self::Email,
            Field::Sex => Self::Sex,
            Field::Age => Self::Age,
        }
    }
}

/// Longest username, in characters.
pub const USERNAME_MAX_CHARS: usize = 8;

/// Oldest age the form accepts.
pub const AGE_MAX: u8 = 150;

/// Whether `name` is 1 to 8 letters or digits of any script, counted after NFC as the
/// server counts them.
pub fn username_ok(name: &str) -> bool {
    let name: String = name.trim().nfc().collect();
    let count = name.chars().count();
    (1..=USERNAME_MAX_CHARS).contains(&count)
        && name.chars().all(char::is_alphanumeric)
        && unicode_security::MixedScript::is_single_script(name.as_str())
}

/// Whether `email` looks like `name@host.tld` by the server's rule: one `@`, no spaces or
/// control characters, a host of two or more dot-separated labels that neither start nor end
/// with `-`, and a top-level label of two or more letters.
pub fn email_ok(email: &str) -> bool {
    let email = email.trim();
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    let tld = labels.last().copied().unwrap_or_default();
    !local.is_empty()
        && !domain.contains('@')
        && labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
        && tld.chars().count() >= 2
        && tld.chars().all(char::is_alphabetic)
}

/// Each field's problem, as the person has typed so far. Empty fields are reported only
/// when `submitting` (nobody wants "required" on a form they have not touched).
pub fn check(form: &RegisterForm, submitting: bool) -> HashMap<Input, T> {
    let mut errors = HashMap::new();
    let mut need = |field: Input, value: &str, ok: bool, err: T| {
        if value.is_empty() {
            if submitting {
                errors.insert(field, T::ErrRequired);
            }
        } else if !ok {
            errors.insert(field, err);
        }
    };
    need(
        Input::Username,
        &form.username,
        username_ok(&form.username),
        T::ErrUsername,
    );
    let password_err = if form.password.len() > client_core::MAX_PASSWORD_BYTES {
        T::ErrPasswordLong
    } else {
        T::ErrPasswordShort
    };
    need(
        Input::Password,
        &form.password,
        client_core::password_problem(&form.password).is_none(),
        password_err,
    );
    need(
        Input::Email,
        &form.email,
        email_ok(&form.email),
        T::ErrEmail,
    );
    let age_ok = form.age.trim().parse::<u8>().is_ok_and(|a| a <= AGE_MAX);
    need(Input::Age, &form.age, age_ok, T::ErrAge);
    if !form.repeat.is_empty() && form.repeat != form.password {
        errors.insert(Input::Repeat, T::ErrPasswordsDiffer);
    }
    if submitting && form.repeat.is_empty() && !form.password.is_empty() {
        errors.insert(Input::Repeat, T::ErrRequired);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_of_any_script_up_to_eight() {
        assert!(username_ok("amy"));
        assert!(username_ok("小明2"));
        assert!(username_ok("abcdefgh"));
        assert!(!username_ok("abcdefghi"));
        assert!(!username_ok(""));
        assert!(!username_ok("a b"));
        assert!(!username_ok("a-b"));
        // Eight characters once composed, as the server counts them.
        assert!(username_ok(
            "e\u{301}e\u{301}e\u{301}e\u{301}e\u{301}e\u{301}e\u{301}e\u{301}"
        ));
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_host() {
        assert!(email_ok("a@b.cn"));
        assert!(!email_ok("a@b"));
        assert!(!email_ok("@b.cn"));
        assert!(!email_ok("a@.cn"));
        assert!(!email_ok("a@b."));
        assert!(!email_ok("a b@c.de"));
        assert!(!email_ok("a@b@c.de"));
        assert!(
            !email_ok("a@b.c1"),
            "the server wants a top-level label of letters"
        );
        assert!(!email_ok("a@-b.cn"));
        assert!(
            email_ok(" a@b.cn "),
            "surrounding spaces are trimmed, as the server does"
        );
    }

    #[test]
    fn untouched_fields_are_quiet_until_submitted() {
        let mut form = RegisterForm::default();
        assert!(check(&form, false).is_empty());
        assert_eq!(
            check(&form, true).get(&Input::Username),
            Some(&T::ErrRequired)
        );
        form.email = "nope".into();
        form.age = "x".into();
        form.password = "pw".into();
        form.repeat = "pq".into();
        let errors = check(&form, false);
        assert_eq!(errors.get(&Input::Email), Some(&T::ErrEmail));
        assert_eq!(errors.get(&Input::Age), Some(&T::ErrAge));
        assert_eq!(errors.get(&Input::Repeat), Some(&T::ErrPasswordsDiffer));
        assert_eq!(errors.get(&Input::Password), Some(&T::ErrPasswordShort));
        form.password = "eight ch".into();
        assert_eq!(check(&form, false).get(&Input::Password), None);
    }
}
