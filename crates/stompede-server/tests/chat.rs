//! The chat application's protocol over real sockets: the room list on subscribe and live,
//! creating rooms, member lists, ENTER/TALK/LEAVE, and leaving by UNSUBSCRIBE or by dropping
//! the connection.

mod common;

use common::{body, Client, TestServer};
use serde_json::{json, Value};
use stompede_stomp::{Command, Frame};

fn parse(frame: &Frame) -> Value {
    serde_json::from_str(&body(frame)).expect("json body")
}

async fn send(client: &mut Client, destination: &str, value: Value, receipt: &str) -> Vec<Frame> {
    client
        .send_with_receipt(
            Frame::new(Command::Send)
                .with_header("destination", destination)
                .with_header("content-type", "application/json")
                .with_body(value.to_string()),
            receipt,
        )
        .await
}

/// Reads MESSAGE frames until one on `destination`; returns its JSON (skipping others).
async fn next_on(client: &mut Client, destination: &str) -> Value {
    loop {
        let frame = client.recv().await;
        assert_eq!(frame.command(), Command::Message, "{frame:?}");
        if frame.header("destination") == Some(destination) {
            return parse(&frame);
        }
    }
}

#[tokio::test]
async fn lobby_rooms_members_and_leaving() {
    let server = TestServer::start(common::test_config()).await;
    let mut lobby = Client::connect(&server.url()).await;
    // The list comes straight back on subscribe; the default room is there.
    let got = lobby.subscribe("list", "/app/rooms", "auto").await;
    let list = parse(&got[0]);
    assert_eq!(
        list["rooms"][0],
        json!({"id": "general", "name": "General", "members": 0})
    );
    lobby.subscribe("live", "/topic/rooms", "auto").await;

    // Creating a room: the creator gets it on /user/queue/rooms, everyone sees the new list.
    let mut minsu = Client::connect(&server.url()).await;
    minsu.subscribe("mine", "/user/queue/rooms", "auto").await;
    let got = send(
        &mut minsu,
        "/app/rooms/create",
        json!({"name": "Rust 이야기"}),
        "c",
    )
    .await;
    let room = parse(&got[0]);
    assert_eq!(room["name"], "Rust 이야기");
    let id = room["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("rust-"), "{id}");
    let list = next_on(&mut lobby, "/topic/rooms").await;
    assert_eq!(list["rooms"][1]["id"], id.as_str());

    // Two people enter; both see the announcements, the member list and the lobby counts.
    let topic = format!("/topic/chat/room/{id}");
    let members = format!("/topic/rooms/{id}");
    let mut ann = Client::connect(&server.url()).await;
    for (client, name) in [(&mut minsu, "민수"), (&mut ann, "Ann")] {
        client.subscribe("room", &topic, "auto").await;
        client.subscribe("members", &members, "auto").await;
        let enter = json!({"type": "ENTER", "roomId": id, "sender": name});
        client
            .send(
                &Frame::new(Command::Send)
                    .with_header("destination", "/app/chat/message")
                    .with_body(enter.to_string()),
            )
            .await;
        // Each sees its own announcement first.
        let line = next_on(client, &topic).await;
        assert_eq!(line["sender"], name);
    }
    let line = next_on(&mut minsu, &topic).await;
    assert_eq!(line["message"], "Ann님이 입장했습니다.");
    let detail = next_on(&mut ann, &members).await;
    assert_eq!(detail["members"], json!(["Ann", "민수"]));
    let list = next_on(&mut lobby, "/topic/rooms").await;
    assert_eq!(list["rooms"][1]["members"], 1);
    let list = next_on(&mut lobby, "/topic/rooms").await;
    assert_eq!(list["rooms"][1]["members"], 2);
    // The room's snapshot on subscribe.
    let got = lobby
        .subscribe("snap", &format!("/app/rooms/{id}"), "auto")
        .await;
    assert_eq!(parse(&got[0])["members"], json!(["Ann", "민수"]));

    // TALK goes through with the name the session entered under.
    let talk = json!({"type": "TALK", "roomId": id, "sender": "someone else", "message": "안녕"});
    send(&mut ann, "/app/chat/message", talk, "talk").await;
    let line = next_on(&mut minsu, &topic).await;
    assert_eq!(line["sender"], "Ann");
    assert_eq!(line["message"], "안녕");

    // Ann leaves by UNSUBSCRIBE; 민수 sees it and the member list shrinks.
    ann.send_with_receipt(
        Frame::new(Command::Unsubscribe).with_header("id", "room"),
        "u",
    )
    .await;
    let line = next_on(&mut minsu, &topic).await;
    assert_eq!(line["type"], "LEAVE");
    assert_eq!(line["message"], "Ann님이 퇴장했습니다.");
    assert_eq!(
        next_on(&mut minsu, &members).await["members"],
        json!(["민수"])
    );

    // 민수 drops the connection: the lobby's count goes back to 0.
    minsu.close_socket().await;
    loop {
        let list = next_on(&mut lobby, "/topic/rooms").await;
        if list["rooms"][1]["members"] == 0 {
            break;
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn chat_errors_reach_the_sender_only() {
    let server = TestServer::start(common::test_config()).await;
    let mut client = Client::connect(&server.url()).await;
    client.subscribe("e", "/user/queue/errors", "auto").await;
    let got = send(&mut client, "/app/rooms/create", json!({"name": "  "}), "c").await;
    assert_eq!(parse(&got[0])["error"], "message rejected");
    let got = send(
        &mut client,
        "/app/rooms/create",
        json!({"name": "x".repeat(65)}),
        "c2",
    )
    .await;
    assert_eq!(
        parse(&got[0])["detail"],
        "room name must be 1-64 characters"
    );
    let got = client.subscribe("s", "/app/rooms/nope", "auto").await;
    assert_eq!(parse(&got[0])["error"], "not found");
    let bad = json!({"type": "TALK", "roomId": "../x", "sender": "a", "message": ""});
    let got = send(&mut client, "/app/chat/message", bad, "t").await;
    assert_eq!(parse(&got[0])["error"], "message rejected");
    let got = send(
        &mut client,
        "/app/chat/message",
        json!({"type": "SHOUT"}),
        "t2",
    )
    .await;
    assert_eq!(parse(&got[0])["error"], "invalid payload");
    server.shutdown().await;
}
