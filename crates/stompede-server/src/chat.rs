//! The chat application of the demo: rooms with live member lists, over STOMP.
//!
//! All bodies are JSON.
//! - SUBSCRIBE `/app/rooms` → the room list once: `{"rooms":[{"id","name","members"}]}`;
//!   `/topic/rooms` carries the same shape whenever a room or a count changes.
//! - SEND `/app/rooms/create` `{"name"}` → the new room to the sender on
//!   `/user/queue/rooms`, and a `/topic/rooms` update.
//! - SUBSCRIBE `/app/rooms/{id}` → the room once: `{"id","name","members":[names]}`;
//!   `/topic/rooms/{id}` carries it whenever its members change.
//! - SEND `/app/chat/message` `{type, roomId, sender, message}` with type `ENTER`, `TALK` or
//!   `LEAVE`; every line goes to `/topic/chat/room/{roomId}`. ENTER joins (creating a room
//!   named after an unknown id) and is announced as `"<sender>님이 입장했습니다."` (or English);
//!   LEAVE, an UNSUBSCRIBE from the room's topic, or the session's end leaves, announced too.
//!
//! Errors (bad names, unknown rooms) reach the sender on `/user/queue/errors`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use stompede_broker::SessionId;

use crate::app::{json, AppRequest, HandlerError, Handlers, Messaging, Reply};
use crate::config::Locale;
use crate::events::{SessionEvents, SessionRef};

/// Longest room id accepted.
const MAX_ROOM_ID: usize = 128;
/// Longest room name and sender name, in characters.
const MAX_NAME: usize = 64;
/// Longest chat line, in characters.
const MAX_MESSAGE: usize = 2000;
/// Most rooms at once; past it, the oldest empty room makes way, or creation fails.
const MAX_ROOMS: usize = 500;
/// Rooms every server starts with.
const DEFAULT_ROOMS: [(&str, &str); 1] = [("general", "General")];
/// Where chat lines go: this plus the room id.
const ROOM_TOPIC: &str = "/topic/chat/room/";

/// Kind of chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MessageType {
    /// Someone joined the room.
    Enter,
    /// Someone said something.
    Talk,
    /// Someone left the room.
    Leave,
}

/// One chat message, as the page sends and receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// ENTER, TALK or LEAVE.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The room.
    pub room_id: String,
    /// Display name of the sender.
    pub sender: String,
    /// The text; for ENTER and LEAVE the server writes the announcement.
    #[serde(default)]
    pub message: String,
}

/// A room in the lobby's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    /// Its id, used in destinations.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// How many people are in it.
    pub members: usize,
}

/// The lobby's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomList {
    /// Oldest first.
    pub rooms: Vec<RoomSummary>,
}

/// One room with who is in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomDetail {
    /// Its id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Display names of the people in it, sorted, each once.
    pub members: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct CreateRoom {
    name: String,
}

/// The chat application: its handlers and the session events that track who is where.
#[derive(Clone)]
pub struct Chat {
    locale: Locale,
    rooms: Arc<Mutex<Rooms>>,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("locale", &self.locale)
            .finish()
    }
}

#[derive(Debug, Default)]
struct Rooms {
    /// Oldest first.
    rooms: Vec<Room>,
    ids: RandomState,
}

#[derive(Debug)]
struct Room {
    id: String,
    name: String,
    /// Each session in the room with the name it entered under.
    members: Vec<(SessionId, String)>,
    permanent: bool,
}

impl Room {
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.members.iter().map(|(_, n)| n.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    fn summary(&self) -> RoomSummary {
        RoomSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            members: self.names().len(),
        }
    }

    fn detail(&self) -> RoomDetail {
        RoomDetail {
            id: self.id.clone(),
            name: self.name.clone(),
            members: self.names(),
        }
    }
}

impl Rooms {
    fn with_defaults() -> Rooms {
        let mut rooms = Rooms::default();
        for (id, name) in DEFAULT_ROOMS {
            rooms.rooms.push(Room {
                id: id.to_owned(),
                name: name.to_owned(),
                members: Vec::new(),
                permanent: true,
            });
        }
        rooms
    }

    fn get(&self, id: &str) -> Option<&Room> {
        self.rooms.iter().find(|r| r.id == id)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Room> {
        self.rooms.iter_mut().find(|r| r.id == id)
    }

    fn list(&self) -> RoomList {
        RoomList {
            rooms: self.rooms.iter().map(Room::summary).collect(),
        }
    }

    /// Adds a room, making way by dropping the oldest empty one when full.
    fn add(&mut self, id: String, name: String) -> Result<&Room, HandlerError> {
        if self.rooms.len() >= MAX_ROOMS {
            let empty = self
                .rooms
                .iter()
                .position(|r| r.members.is_empty() && !r.permanent)
                .ok_or_else(|| HandlerError::Rejected("too many rooms".to_owned()))?;
            self.rooms.remove(empty);
        }
        self.rooms.push(Room {
            id,
            name,
            members: Vec::new(),
            permanent: false,
        });
        let last = self.rooms.len() - 1;
        Ok(&self.rooms[last])
    }

    /// An id for a new room called `name`: a slug of it and a random suffix.
    fn new_id(&self, name: &str) -> String {
        let mut slug = String::new();
        for c in name.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c.to_ascii_lowercase());
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
            if slug.len() >= 32 {
                break;
            }
        }
        let slug = slug.trim_end_matches('-');
        let slug = if slug.is_empty() { "room" } else { slug };
        // RandomState hashes with keys drawn at start-up: ids are not guessable in advance.
        let mut attempt = 0u64;
        loop {
            let n = self.ids.hash_one((name, self.rooms.len(), attempt));
            let id = format!("{slug}-{}", base36(n % 36u64.pow(5)));
            if self.get(&id).is_none() {
                return id;
            }
            attempt += 1;
        }
    }

    /// Removes `session` from room `id`; its name there if it was in.
    fn leave(&mut self, id: &str, session: SessionId) -> Option<String> {
        let room = self.get_mut(id)?;
        let at = room.members.iter().position(|(s, _)| *s == session)?;
        Some(room.members.remove(at).1)
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

impl Chat {
    /// A chat with the default rooms, announcing in `locale`.
    pub fn new(locale: Locale) -> Chat {
        Chat {
            locale,
            rooms: Arc::new(Mutex::new(Rooms::with_defaults())),
        }
    }

    fn rooms(&self) -> MutexGuard<'_, Rooms> {
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The chat's routes under the application prefix.
    pub fn handlers(&self) -> Handlers {
        let list = self.clone();
        let detail = self.clone();
        let create = self.clone();
        let message = self.clone();
        Handlers::new()
            .subscribe("/rooms", move |_req: AppRequest| {
                let reply = Reply::json(&list.rooms().list());
                async move { reply }
            })
            .subscribe("/rooms/{id}", move |req: AppRequest| {
                let id = req.param("id").unwrap_or_default();
                let reply = match detail.rooms().get(id) {
                    Some(room) => Reply::json(&room.detail()),
                    None => Err(HandlerError::NotFound(format!("no room {id:?}"))),
                };
                async move { reply }
            })
            .route(
                "/rooms/create",
                json(move |req: AppRequest, body: CreateRoom| {
                    let reply = create.create(&req.messaging, &body.name);
                    async move { reply }
                }),
            )
            .route(
                "/chat/message",
                json(move |req: AppRequest, body: ChatMessage| {
                    let reply = message.message(&req, body);
                    async move { reply }
                }),
            )
    }

    fn create(&self, messaging: &Messaging, name: &str) -> Result<Reply, HandlerError> {
        let name = name.trim();
        let len = name.chars().count();
        if len == 0 || len > MAX_NAME || name.chars().any(char::is_control) {
            return Err(HandlerError::Rejected(format!(
                "room name must be 1-{MAX_NAME} characters"
            )));
        }
        let (summary, list) = {
            let mut rooms = self.rooms();
            let id = rooms.new_id(name);
            let summary = rooms.add(id, name.to_owned())?.summary();
            (summary, rooms.list())
        };
        publish(messaging, "/topic/rooms", &list);
        Ok(Reply::json(&summary)?.to_session("/queue/rooms"))
    }

    fn message(&self, req: &AppRequest, mut message: ChatMessage) -> Result<Reply, HandlerError> {
        validate(&message)?;
        let id = message.room_id.clone();
        match message.kind {
            MessageType::Enter => {
                let list = {
                    let mut rooms = self.rooms();
                    if rooms.get(&id).is_none() {
                        rooms.add(id.clone(), id.clone())?;
                    }
                    let room = rooms.get_mut(&id).ok_or_else(|| not_found(&id))?;
                    room.members.retain(|(s, _)| *s != req.session);
                    room.members.push((req.session, message.sender.clone()));
                    rooms.list()
                };
                message.message = announcement(self.locale, MessageType::Enter, &message.sender);
                // The line first, then the lists it changes.
                publish(&req.messaging, &format!("{ROOM_TOPIC}{id}"), &message);
                self.changed(&req.messaging, &id, list);
                return Ok(Reply::None);
            }
            MessageType::Talk => {
                // The name the session entered under, when it did: senders cannot pose as others.
                if let Some(room) = self.rooms().get(&id) {
                    if let Some((_, name)) = room.members.iter().find(|(s, _)| *s == req.session) {
                        message.sender.clone_from(name);
                    }
                }
            }
            MessageType::Leave => {
                let left = self.rooms().leave(&id, req.session);
                let Some(name) = left else {
                    return Ok(Reply::None);
                };
                message.sender = name;
                message.message = announcement(self.locale, MessageType::Leave, &message.sender);
                publish(&req.messaging, &format!("{ROOM_TOPIC}{id}"), &message);
                let list = self.rooms().list();
                self.changed(&req.messaging, &id, list);
                return Ok(Reply::None);
            }
        }
        Ok(Reply::json(&message)?.to(format!("{ROOM_TOPIC}{id}")))
    }

    /// Publishes the room's members and the lobby's list after a change in room `id`.
    fn changed(&self, messaging: &Messaging, id: &str, list: RoomList) {
        let detail = self.rooms().get(id).map(Room::detail);
        if let Some(detail) = detail {
            publish(messaging, &format!("/topic/rooms/{id}"), &detail);
        }
        publish(messaging, "/topic/rooms", &list);
    }

    /// `session` left room `id` without saying so: announce it for them.
    fn left(&self, messaging: &Messaging, id: &str, session: SessionId) {
        let Some(name) = self.rooms().leave(id, session) else {
            return;
        };
        let line = ChatMessage {
            kind: MessageType::Leave,
            room_id: id.to_owned(),
            message: announcement(self.locale, MessageType::Leave, &name),
            sender: name,
        };
        publish(messaging, &format!("{ROOM_TOPIC}{id}"), &line);
        let list = self.rooms().list();
        self.changed(messaging, id, list);
    }
}

impl SessionEvents for Chat {
    fn on_unsubscribe(&self, session: SessionRef<'_>, _id: &str, destination: &str) {
        if let Some(room) = destination.strip_prefix(ROOM_TOPIC) {
            self.left(session.messaging, room, session.id);
        }
    }

    fn on_disconnect(&self, session: SessionRef<'_>) {
        let rooms: Vec<String> = self
            .rooms()
            .rooms
            .iter()
            .filter(|r| r.members.iter().any(|(s, _)| *s == session.id))
            .map(|r| r.id.clone())
            .collect();
        for room in rooms {
            self.left(session.messaging, &room, session.id);
        }
    }
}

fn publish<T: Serialize>(messaging: &Messaging, destination: &str, value: &T) {
    if let Err(e) = messaging.send_json(destination, value) {
        tracing::warn!(destination, cause = %e, "chat update not published");
    }
}

fn not_found(id: &str) -> HandlerError {
    HandlerError::NotFound(format!("no room {id:?}"))
}

/// The announcement for `sender` entering or leaving a room.
pub fn announcement(locale: Locale, kind: MessageType, sender: &str) -> String {
    match (locale, kind) {
        (Locale::Ko, MessageType::Leave) => format!("{sender}님이 퇴장했습니다."),
        (Locale::Ko, _) => format!("{sender}님이 입장했습니다."),
        (Locale::En, MessageType::Leave) => format!("{sender} has left the room."),
        (Locale::En, _) => format!("{sender} has entered the room."),
    }
}

/// The announcement for `sender` entering a room.
pub fn enter_announcement(locale: Locale, sender: &str) -> String {
    announcement(locale, MessageType::Enter, sender)
}

fn validate(message: &ChatMessage) -> Result<(), HandlerError> {
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
    let sender = message.sender.trim();
    let sender_len = sender.chars().count();
    if sender_len == 0 || sender_len > MAX_NAME || sender.chars().any(char::is_control) {
        return Err(HandlerError::Rejected(format!(
            "sender must be 1-{MAX_NAME} characters"
        )));
    }
    if message.message.chars().count() > MAX_MESSAGE {
        return Err(HandlerError::Rejected(format!(
            "message must be at most {MAX_MESSAGE} characters"
        )));
    }
    Ok(())
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

    #[test]
    fn announcements_in_both_languages() {
        assert_eq!(
            announcement(Locale::Ko, MessageType::Enter, "민수"),
            "민수님이 입장했습니다."
        );
        assert_eq!(
            announcement(Locale::Ko, MessageType::Leave, "민수"),
            "민수님이 퇴장했습니다."
        );
        assert_eq!(
            announcement(Locale::En, MessageType::Enter, "Ann"),
            "Ann has entered the room."
        );
        assert_eq!(
            announcement(Locale::En, MessageType::Leave, "Ann"),
            "Ann has left the room."
        );
    }

    #[test]
    fn wire_format_matches_the_page() {
        let parsed: ChatMessage =
            serde_json::from_str(r#"{"type":"ENTER","roomId":"r1","sender":"s","message":""}"#)
                .expect("parses");
        assert_eq!(parsed, msg(MessageType::Enter, "r1", "s", ""));
        let out = serde_json::to_string(&parsed).expect("serializes");
        assert_eq!(
            out,
            r#"{"type":"ENTER","roomId":"r1","sender":"s","message":""}"#
        );
        let leave: ChatMessage =
            serde_json::from_str(r#"{"type":"LEAVE","roomId":"r1","sender":"s"}"#).expect("parses");
        assert_eq!(leave.kind, MessageType::Leave);
    }

    #[test]
    fn hostile_rooms_senders_and_lines_are_rejected() {
        for room in ["", "*", "a/b", "../x", "a.b", &"x".repeat(129)] {
            assert!(
                validate(&msg(MessageType::Talk, room, "s", "")).is_err(),
                "{room}"
            );
        }
        for sender in ["", "   ", "a\nb", &"가".repeat(65)] {
            assert!(
                validate(&msg(MessageType::Talk, "1", sender, "")).is_err(),
                "{sender}"
            );
        }
        let long = "x".repeat(MAX_MESSAGE + 1);
        assert!(validate(&msg(MessageType::Talk, "1", "s", &long)).is_err());
        assert!(validate(&msg(MessageType::Talk, "1", "s", &"가".repeat(MAX_MESSAGE))).is_ok());
    }

    #[test]
    fn room_ids_are_slugs_with_a_suffix_and_unique() {
        let mut rooms = Rooms::with_defaults();
        let a = rooms.new_id("Rust Talk!");
        assert!(a.starts_with("rust-talk-"), "{a}");
        rooms
            .add(a.clone(), "Rust Talk!".to_owned())
            .expect("added");
        let b = rooms.new_id("Rust Talk!");
        assert_ne!(a, b);
        assert!(rooms.new_id("한국어 방").starts_with("room-"));
        assert!(rooms
            .new_id(&"x".repeat(500))
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    }

    #[test]
    fn full_room_list_drops_the_oldest_empty_room() {
        let mut rooms = Rooms::with_defaults();
        for n in 0..MAX_ROOMS + 10 {
            rooms.add(format!("r{n}"), format!("R{n}")).expect("room");
        }
        assert_eq!(rooms.rooms.len(), MAX_ROOMS);
        assert!(rooms.get("general").is_some(), "the default room stays");
        for room in &mut rooms.rooms {
            room.members.push((SessionId(1), "x".to_owned()));
        }
        assert!(rooms.add("one-more".to_owned(), "x".to_owned()).is_err());
    }

    #[test]
    fn members_are_listed_once_by_name() {
        let mut rooms = Rooms::with_defaults();
        let room = rooms.get_mut("general").expect("default room");
        room.members.push((SessionId(1), "b".to_owned()));
        room.members.push((SessionId(2), "a".to_owned()));
        room.members.push((SessionId(3), "b".to_owned()));
        assert_eq!(room.detail().members, ["a", "b"]);
        assert_eq!(room.summary().members, 2);
        assert_eq!(rooms.leave("general", SessionId(3)), Some("b".to_owned()));
        assert_eq!(rooms.leave("general", SessionId(3)), None);
    }
}
