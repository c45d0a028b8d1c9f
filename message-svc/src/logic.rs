//! message-svc's pure rules, with their tests: who may read and write a conversation, how
//! large a page a caller gets (in messages and in bytes), and what of a stored envelope each
//! reader gets.

use entity::{CONVERSATION_ROOM, chat_history};
use protocol::e2e::{Envelope, EnvelopeShape};
use protocol::{EnvelopeError, UserId};

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

/// Whether an envelope of `shape` fits a conversation of `kind` with `members`: a direct
/// envelope for a one-to-one conversation; for a group, a key wrapped for each current member
/// and no one else (else `MembersChanged`: the sender's member list is out of date).
pub fn sealed_for(kind: i16, members: &[i64], shape: &EnvelopeShape) -> Result<(), Error> {
    let kind_name = |room: bool| if room { "group" } else { "one-to-one" };
    let room = kind == CONVERSATION_ROOM;
    match shape {
        EnvelopeShape::Direct if !room => Ok(()),
        EnvelopeShape::Group(recipients) if room => {
            // Recipients are distinct (checked with the shape); so are members.
            let all_members = recipients.len() == members.len()
                && recipients
                    .iter()
                    .all(|r| i64::try_from(r.0).is_ok_and(|r| members.contains(&r)));
            if all_members {
                Ok(())
            } else {
                Err(Error::MembersChanged)
            }
        }
        EnvelopeShape::Direct | EnvelopeShape::Group(_) => {
            Err(Error::Envelope(EnvelopeError::WrongKind {
                envelope: kind_name(!room),
                conversation: kind_name(room),
            }))
        }
    }
}

/// A stored envelope, read once to be cut for each of its readers. The whole envelope stays
/// stored; a reader gets a group message's body with only the key wrapped for them
/// ([`Envelope::for_reader`]), so a pushed or fetched copy does not grow with the group (a
/// group of 100 wraps 12.8 KB of keys around a short text). Anything else, or an envelope
/// that does not decode, goes whole.
#[derive(Debug)]
pub enum ReaderCopies {
    /// A group envelope, decoded.
    Group(Envelope),
    /// Sent as stored.
    Whole,
}

impl ReaderCopies {
    /// Reads `envelope` for cutting.
    pub fn of(envelope: &[u8]) -> Self {
        match Envelope::decode(envelope) {
            Ok(group @ Envelope::Group { .. }) => Self::Group(group),
            Ok(Envelope::Direct(_)) | Err(_) => Self::Whole,
        }
    }

    /// `reader`'s copy of `envelope` (the bytes this was read from).
    pub fn for_reader(&self, envelope: &[u8], reader: i64) -> Vec<u8> {
        let Self::Group(group) = self else {
            return envelope.to_vec();
        };
        group
            .for_reader(UserId(service_kit::wire_id(reader)))
            .encode()
            .unwrap_or_else(|_| envelope.to_vec())
    }
}

/// Cuts a stored `envelope` to `reader`'s copy in place (see [`ReaderCopies`]).
pub fn cut_for_reader(envelope: &mut Vec<u8>, reader: i64) {
    let copies = ReaderCopies::of(envelope);
    if matches!(copies, ReaderCopies::Group(_)) {
        *envelope = copies.for_reader(envelope, reader);
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

    #[test]
    fn an_envelope_fits_its_conversation_kind_and_the_current_members() {
        use protocol::UserId;
        let group = |ids: &[u64]| EnvelopeShape::Group(ids.iter().map(|&i| UserId(i)).collect());
        assert!(sealed_for(CONVERSATION_DIRECT, &[1, 2], &EnvelopeShape::Direct).is_ok());
        assert!(sealed_for(CONVERSATION_ROOM, &[1, 2, 3], &group(&[3, 1, 2])).is_ok());
        assert!(matches!(
            sealed_for(CONVERSATION_ROOM, &[1, 2, 3], &group(&[1, 2])),
            Err(Error::MembersChanged)
        ));
        assert!(matches!(
            sealed_for(CONVERSATION_ROOM, &[1, 2], &group(&[1, 2, 4])),
            Err(Error::MembersChanged)
        ));
        assert!(matches!(
            sealed_for(CONVERSATION_ROOM, &[1, 2], &group(&[1, 4])),
            Err(Error::MembersChanged)
        ));
        assert!(matches!(
            sealed_for(CONVERSATION_ROOM, &[1, 2], &EnvelopeShape::Direct),
            Err(Error::Envelope(EnvelopeError::WrongKind { .. }))
        ));
        assert!(matches!(
            sealed_for(CONVERSATION_DIRECT, &[1, 2], &group(&[1, 2])),
            Err(Error::Envelope(EnvelopeError::WrongKind { .. }))
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
