//! The chat application of the demo: clients SEND `{type, roomId, sender, message}` to
//! `/app/chat/message`; every message goes to `/topic/chat/room/{roomId}`, and an `ENTER` becomes
//! the announcement `"<sender>님이 입장했습니다."` (or English).

use serde::{Deserialize, Serialize};

use crate::app::{json, AppRequest, HandlerError, Handlers, Reply};
use crate::config::Locale;

/// Longest room id accepted.
const MAX_ROOM_ID: usize = 128;
/// Longest sender name accepted, in characters.
const MAX_SENDER: usize = 64;

/// Kind of chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MessageType {
    /// Someone joined the room.
    Enter,
    /// Someone said something.
    Talk,
}

/// One chat message, as the page sends and receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// ENTER or TALK.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The room.
    pub room_id: String,
    /// Display name of the sender.
    pub sender: String,
    /// The text; for ENTER the server writes the announcement.
    #[serde(default)]
    pub message: String,
}

/// The chat routes: `/chat/message` (under the application prefix).
pub fn handlers(locale: Locale) -> Handlers {
    Handlers::new().route(
        "/chat/message",
        json(move |_req: AppRequest, message: ChatMessage| async move { handle(locale, message) }),
    )
}

/// The announcement for `sender` entering a room.
pub fn enter_announcement(locale: Locale, sender: &str) -> String {
    match locale {
        Locale::Ko => format!("{sender}님이 입장했습니다."),
        Locale::En => format!("{sender} has entered the room."),
    }
}

fn handle(locale: Locale, mut message: ChatMessage) -> Result<Reply, HandlerError> {
    let room_ok = !message.room_id.is_empty()
        && message.room_id.len() <= MAX_ROOM_ID
        && message
            .room_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !room_ok {
        return Err(HandlerError::Rejected(
            "roomId must be 1-128 characters of A-Z a-z 0-9 - _".to_owned(),
        ));
    }
    let sender_len = message.sender.chars().count();
    if sender_len == 0 || sender_len > MAX_SENDER {
        return Err(HandlerError::Rejected(
            "sender must be 1-64 characters".to_owned(),
        ));
    }
    if message.kind == MessageType::Enter {
        message.message = enter_announcement(locale, &message.sender);
    }
    let destination = format!("/topic/chat/room/{}", message.room_id);
    Ok(Reply::json(&message)?.to(destination))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: MessageType, room: &str, sender: &str, text: &str) -> ChatMessage {
        ChatMessage {
            kind,
            room_id: room.to_owned(),
            sender: sender.to_owned(),
            message: text.to_owned(),
        }
    }

    fn sent(reply: Reply) -> (String, ChatMessage) {
        let Reply::Send(out) = reply else {
            panic!("expected a message")
        };
        let body = serde_json::from_slice(&out.body).expect("json body");
        (out.destination.expect("destination"), body)
    }

    #[test]
    fn enter_becomes_announcement_in_room_topic() {
        let reply = handle(Locale::Ko, msg(MessageType::Enter, "1", "민수", "")).unwrap();
        let (dest, body) = sent(reply);
        assert_eq!(dest, "/topic/chat/room/1");
        assert_eq!(body.message, "민수님이 입장했습니다.");
        let reply = handle(Locale::En, msg(MessageType::Enter, "1", "Ann", "x")).unwrap();
        assert_eq!(sent(reply).1.message, "Ann has entered the room.");
    }

    #[test]
    fn talk_is_passed_through() {
        let reply = handle(Locale::Ko, msg(MessageType::Talk, "abc-1", "a", "안녕")).unwrap();
        let (dest, body) = sent(reply);
        assert_eq!(dest, "/topic/chat/room/abc-1");
        assert_eq!(body, msg(MessageType::Talk, "abc-1", "a", "안녕"));
    }

    #[test]
    fn wire_format_matches_the_page() {
        let parsed: ChatMessage =
            serde_json::from_str(r#"{"type":"ENTER","roomId":"r1","sender":"s","message":""}"#)
                .unwrap();
        assert_eq!(parsed, msg(MessageType::Enter, "r1", "s", ""));
        let out = serde_json::to_string(&parsed).unwrap();
        assert_eq!(
            out,
            r#"{"type":"ENTER","roomId":"r1","sender":"s","message":""}"#
        );
    }

    #[test]
    fn hostile_rooms_and_senders_are_rejected() {
        for room in ["", "*", "a/b", "../x", "a.b", &"x".repeat(129)] {
            assert!(
                handle(Locale::Ko, msg(MessageType::Talk, room, "s", "")).is_err(),
                "{room}"
            );
        }
        assert!(handle(Locale::Ko, msg(MessageType::Talk, "1", "", "")).is_err());
        let long = "가".repeat(65);
        assert!(handle(Locale::Ko, msg(MessageType::Talk, "1", &long, "")).is_err());
    }
}
