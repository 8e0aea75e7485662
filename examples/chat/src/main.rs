//! The chat application on the stompede crates, in one file: rooms with live member lists over
//! STOMP (WebSocket with SockJS fallback), mounted into an axum `Router` beside plain HTTP
//! routes. It speaks the protocol of `stompede serve`, so the same web page (`web/dist`) runs
//! on it: `bash scripts/build-web.sh && cargo run -p stompede-example-chat`, then open
//! http://localhost:8080.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use stompede_server::app::{AppRequest, Handler, HandlerError, Handlers, Messaging, Reply};
use stompede_server::events::{SessionEvents, SessionRef};
use stompede_server::{Config, SessionId, Stompede};

/// A room: its name, and each session in it with the name it entered under.
struct Room(String, BTreeMap<SessionId, String>);

/// Rooms by id, shared by the handlers, the session events and the HTTP routes.
#[derive(Clone, Default)]
struct Chat(Arc<Mutex<BTreeMap<String, Room>>>);

type Answer = Result<Reply, HandlerError>;

fn rejected(why: &str) -> HandlerError {
    HandlerError::Rejected(why.to_owned())
}

/// Who is in a room, sorted, each name once.
fn names(room: &Room) -> BTreeSet<&String> {
    room.1.values().collect()
}

impl Chat {
    fn rooms(&self) -> MutexGuard<'_, BTreeMap<String, Room>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn list(&self) -> Value {
        let rooms: Vec<Value> = (self.rooms().iter())
            .map(|(id, r)| json!({ "id": id, "name": r.0, "members": names(r).len() }))
            .collect();
        json!({ "rooms": rooms })
    }

    fn detail(&self, id: &str) -> Option<Value> {
        let rooms = self.rooms();
        let room = rooms.get(id)?;
        Some(json!({ "id": id, "name": room.0, "members": names(room) }))
    }

    /// A line to the room's topic, then the room's members and the lobby's list.
    fn announce(&self, messaging: &Messaging, room: &str, kind: &str, sender: &str, text: &str) {
        let line = json!({ "type": kind, "roomId": room, "sender": sender, "message": text });
        let _ = messaging.send_json(&format!("/topic/chat/room/{room}"), &line);
        if let Some(detail) = self.detail(room) {
            let _ = messaging.send_json(&format!("/topic/rooms/{room}"), &detail);
        }
        let _ = messaging.send_json("/topic/rooms", &self.list());
    }

    fn leave(&self, messaging: &Messaging, room: &str, session: SessionId) {
        let left = self.rooms().get_mut(room).map(|r| r.1.remove(&session));
        if let Some(Some(name)) = left {
            let text = format!("{name}님이 퇴장했습니다.");
            self.announce(messaging, room, "LEAVE", &name, &text);
        }
    }

    /// SEND /app/chat/message {type: ENTER | TALK | LEAVE, roomId, sender, message}.
    fn line(&self, req: &AppRequest) -> Answer {
        let line: Value = req.json()?;
        let field = |name: &str| line[name].as_str().unwrap_or_default().to_owned();
        let (room, sender, text) = (field("roomId"), field("sender"), field("message"));
        let id_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if room.is_empty() || room.len() > 128 || !room.chars().all(id_char) {
            return Err(rejected("roomId: 1-128 of A-Z a-z 0-9 - _"));
        }
        if sender.trim().is_empty() || sender.chars().count() > 64 || text.chars().count() > 2000 {
            return Err(rejected("sender: 1-64 characters, message: at most 2000"));
        }
        match line["type"].as_str() {
            Some("ENTER") => {
                let new = || Room(room.clone(), BTreeMap::new());
                let mut rooms = self.rooms();
                let members = &mut rooms.entry(room.clone()).or_insert_with(new).1;
                members.insert(req.session, sender.clone());
                drop(rooms);
                let text = format!("{sender}님이 입장했습니다.");
                self.announce(&req.messaging, &room, "ENTER", &sender, &text);
                Ok(Reply::None)
            }
            Some("LEAVE") => {
                self.leave(&req.messaging, &room, req.session);
                Ok(Reply::None)
            }
            Some("TALK") => Ok(Reply::json(&line)?.to(format!("/topic/chat/room/{room}"))),
            _ => Err(rejected("type is ENTER, TALK or LEAVE")),
        }
    }

    fn room(&self, req: &AppRequest) -> Answer {
        let id = req.param("id").unwrap_or_default();
        Reply::json(&self.detail(id).ok_or(HandlerError::NotFound(id.into()))?)
    }

    /// SEND /app/rooms/create {name}: the room to the sender, the new list to everyone.
    fn create(&self, req: &AppRequest) -> Answer {
        let body: Value = req.json()?;
        let name = body["name"].as_str().unwrap_or_default().trim().to_owned();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(rejected("room name must be 1-64 characters"));
        }
        let id = format!("room-{}", self.rooms().len() + 1);
        let room = Room(name.clone(), BTreeMap::new());
        self.rooms().insert(id.clone(), room);
        let _ = req.messaging.send_json("/topic/rooms", &self.list());
        let created = json!({ "id": id, "name": name, "members": 0 });
        Ok(Reply::json(&created)?.to_session("/queue/rooms"))
    }

    fn handlers(&self) -> Handlers {
        let (a, b, c, d) = (self.clone(), self.clone(), self.clone(), self.clone());
        Handlers::new()
            // SUBSCRIBE /app/rooms and /app/rooms/{id}: a snapshot straight back.
            .subscribe("/rooms", now(move |_| Reply::json(&a.list())))
            .subscribe("/rooms/{id}", now(move |req| b.room(req)))
            .route("/rooms/create", now(move |req| c.create(req)))
            .route("/chat/message", now(move |req| d.line(req)))
    }
}

/// A handler that answers without awaiting anything.
fn now(f: impl Fn(&AppRequest) -> Answer + Send + Sync + 'static) -> impl Handler {
    move |req: AppRequest| std::future::ready(f(&req))
}

/// Leaving is also an UNSUBSCRIBE from the room's topic, or the end of the session.
impl SessionEvents for Chat {
    fn on_unsubscribe(&self, session: SessionRef<'_>, _id: &str, destination: &str) {
        if let Some(room) = destination.strip_prefix("/topic/chat/room/") {
            self.leave(session.messaging, room, session.id);
        }
    }

    fn on_disconnect(&self, session: SessionRef<'_>) {
        let rooms: Vec<String> = self.rooms().keys().cloned().collect();
        for room in rooms {
            self.leave(session.messaging, &room, session.id);
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut config = Config::default();
    config.chat.enabled = false; // the binary's built-in chat; here, this file is the chat
    let chat = Chat::default();
    let general = Room("General".into(), BTreeMap::new());
    chat.rooms().insert("general".into(), general);
    let server = Stompede::new(config).handlers(chat.handlers());
    let server = server.events(chat.clone());

    // Plain HTTP beside STOMP: read the rooms, or post a line into a room from any backend.
    let (messaging, rooms) = (server.messaging(), chat.clone());
    let app = Router::new()
        .route("/api/rooms", get(move || async move { Json(rooms.list()) }))
        .route(
            "/api/rooms/{id}/say",
            post(move |Path(id): Path<String>, text: String| async move {
                chat.announce(&messaging, &id, "TALK", "server", &text);
            }),
        )
        .merge(server.router());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("chat on http://{}", listener.local_addr()?);
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let stop = async { tokio::signal::ctrl_c().await.unwrap_or(()) };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
}
