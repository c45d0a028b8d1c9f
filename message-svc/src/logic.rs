//! message-svc's pure rules, with their tests: who may read and write a conversation, and how
//! large a page a caller gets (in messages and in bytes).

use entity::{CONVERSATION_ROOM, chat_history};

use crate::error::Error;

/// Whether `user` may read and write a conversation of `kind` whose members are `members`:
/// a member may; anyone else is refused as not a member (a group) or not a friend (one to
/// one, which has no members once the friendship ends).
pub fn may_write(kind: i16, members: &[i64], user: i64) -> Result<(), Error> {
    if members.contains(&user) {
        Ok(())
    } else if kind == CONVERSATION_ROOM {
        Err(Error::NotMember)
    } else {
        Err(Error::NotFriends)
    }
}

/// Bytes counted for each message of a page besides its envelope (ids, seq, time, framing).
pub const MESSAGE_OVERHEAD: usize = 64;

/// What a page of messages may still take: a number of messages and a number of bytes, so a
/// page of large envelopes stays within one gRPC message and one client frame.
#[derive(Debug, Clone, Copy)]
pub struct PageBudget {
    /// Messages left.
    pub rows: u64,
    /// Bytes left.
    pub bytes: usize,
    taken: bool,
}

impl PageBudget {
    /// A page of at most `rows` messages and `bytes` bytes.
    pub fn new(rows: u64, bytes: usize) -> Self {
        Self {
            rows,
            bytes,
            taken: false,
        }
    }

    /// Whether nothing more fits.
    pub fn is_spent(&self) -> bool {
        self.rows == 0 || (self.taken && self.bytes == 0)
    }

    /// Takes `row` if it fits; the first row of a page always fits, so paging progresses.
    pub fn take(&mut self, row: &chat_history::Model) -> bool {
        let size = row.envelope.len() + MESSAGE_OVERHEAD;
        if self.rows == 0 || (self.taken && size > self.bytes) {
            return false;
        }
        self.rows -= 1;
        self.bytes = self.bytes.saturating_sub(size);
        self.taken = true;
        true
    }
}

/// The messages a page holds: what the caller asked for, at most `max`; 0 asks for `max`.
pub fn page_rows(asked: u32, max: u32) -> u64 {
    u64::from(if asked == 0 { max } else { asked.min(max) })
}

#[cfg(test)]
mod tests {
    use entity::CONVERSATION_DIRECT;

    use super::*;

    #[test]
    fn members_write_others_get_the_error_of_the_conversation_kind() {
        assert!(may_write(CONVERSATION_ROOM, &[1, 2], 2).is_ok());
        assert!(matches!(
            may_write(CONVERSATION_ROOM, &[1, 2], 3),
            Err(Error::NotMember)
        ));
        assert!(matches!(
            may_write(CONVERSATION_DIRECT, &[], 1),
            Err(Error::NotFriends)
        ));
    }

    fn row(envelope_len: usize) -> chat_history::Model {
        chat_history::Model {
            id: 0,
            conversation_id: 1,
            seq: 1,
            sender_id: 1,
            client_msg_id: vec![0; 16],
            sent_at: 0,
            envelope: vec![0; envelope_len],
        }
    }

    #[test]
    fn a_page_takes_rows_until_its_count_or_bytes_run_out_but_always_one() {
        let mut budget = PageBudget::new(3, 100);
        assert!(
            budget.take(&row(500)),
            "the first row fits whatever its size"
        );
        assert!(budget.is_spent(), "and spends the bytes");
        assert!(!budget.take(&row(1)));
        let mut budget = PageBudget::new(2, 10_000);
        assert!(budget.take(&row(10)) && budget.take(&row(10)));
        assert!(!budget.take(&row(10)), "two rows at most");
    }

    #[test]
    fn pages_are_capped_and_zero_means_the_cap() {
        assert_eq!(page_rows(0, 200), 200);
        assert_eq!(page_rows(10, 200), 10);
        assert_eq!(page_rows(5_000, 200), 200);
    }
}
