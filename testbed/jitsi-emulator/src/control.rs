//! The control API under `/control/` (JSON in, JSON out), a thin mapping onto the same
//! operations the Rust handle offers. Documented in this crate's README.

use std::sync::Arc;

use hyper::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::bridge::{BridgeUpdate, ConferenceRequest};
use crate::fault::Fault;
use crate::follow::FollowConfig;
use crate::model::{ModelError, RecorderUpdate, ShardUpdate};
use crate::server::{respond, EmuBody, Shared};
use crate::Error;

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<EmuBody> {
    match serde_json::to_vec(value) {
        Ok(body) => respond(status, Some("application/json"), EmuBody::full(body)),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn error(status: StatusCode, message: &str) -> Response<EmuBody> {
    let body = serde_json::json!({ "error": message });
    respond(
        status,
        Some("application/json"),
        EmuBody::full(body.to_string()),
    )
}

fn model_error(e: &ModelError) -> Response<EmuBody> {
    let status = match e {
        ModelError::UnknownRecorder(_)
        | ModelError::UnknownShard(_)
        | ModelError::UnknownBridge(_)
        | ModelError::UnknownConference(_) => StatusCode::NOT_FOUND,
        ModelError::NoBridgeAvailable(_) => {
            return json(
                StatusCode::CONFLICT,
                &serde_json::json!({ "refused": true }),
            );
        }
        ModelError::Gone(_) | ModelError::Busy(_) | ModelError::Expired(_) => StatusCode::CONFLICT,
        ModelError::NoJibriAvailable(_) => {
            return json(
                StatusCode::CONFLICT,
                &serde_json::json!({ "refused": true }),
            );
        }
        ModelError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    error(status, &e.to_string())
}

fn reply<T: Serialize>(result: Result<T, ModelError>) -> Response<EmuBody> {
    match result {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => model_error(&e),
    }
}

/// Parses a JSON body; an empty body is `{}`.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

fn bad_request(message: &str) -> Response<EmuBody> {
    error(StatusCode::BAD_REQUEST, message)
}

pub(crate) fn handle(
    shared: &Arc<Shared>,
    method: &Method,
    path: &[&str],
    body: &[u8],
) -> Response<EmuBody> {
    let m = method.clone();
    match (m, path) {
        (Method::GET, ["state"]) => json(StatusCode::OK, &shared.state()),
        (Method::POST, ["reset"]) => {
            shared.reset();
            json(StatusCode::OK, &shared.state())
        }

        (Method::GET, ["recorders"]) => json(StatusCode::OK, &shared.state().recorders),
        (Method::GET, ["recorders", id]) => reply(shared.recorder(id)),
        (Method::PUT, ["recorders", id]) => match parse::<RecorderUpdate>(body) {
            Ok(update) => reply(shared.set_recorder(id, &update).map(|(view, _)| view)),
            Err(e) => bad_request(&e),
        },
        (Method::DELETE, ["recorders", id]) => reply(
            shared
                .delete_recorder(id)
                .map(|()| serde_json::json!({ "deleted": id })),
        ),
        (Method::POST, ["recorders", id, "start-recording"]) => reply(shared.start_recording(id)),
        (Method::POST, ["recorders", id, "stop-recording"]) => reply(shared.stop_recording(id)),
        (Method::POST, ["recorders", id, "finish-finalize"]) => reply(shared.finish_finalize(id)),
        (Method::POST, ["recorders", id, "restart"]) => reply(shared.restart(id)),
        (Method::POST, ["recorders", id, "fault"]) => match parse::<Fault>(body) {
            Ok(fault) => reply(shared.set_recorder_fault(id, fault)),
            Err(e) => bad_request(&e),
        },
        (Method::GET, ["recorders", id, "calls"]) => reply(shared.calls(id)),

        (Method::GET, ["jicofo", shard]) => reply(shared.shard(shard)),
        (Method::PUT, ["jicofo", shard]) => match parse::<ShardUpdate>(body) {
            Ok(update) => reply(shared.set_shard(shard, &update).map(|(view, _)| view)),
            Err(e) => bad_request(&e),
        },
        (Method::POST, ["jicofo", shard, "request-recording"]) => reply(
            shared
                .request_recording(shard)
                .map(|id| serde_json::json!({ "recorder": id })),
        ),
        (Method::POST, ["jicofo", shard, "fault"]) => match parse::<Fault>(body) {
            Ok(fault) => reply(shared.set_shard_fault(shard, fault)),
            Err(e) => bad_request(&e),
        },

        (Method::GET, ["bridges"]) => json(StatusCode::OK, &shared.state().bridges),
        (Method::GET, ["bridges", id]) => reply(shared.bridge(id)),
        (Method::PUT, ["bridges", id]) => match parse::<BridgeUpdate>(body) {
            Ok(update) => reply(shared.set_bridge(id, &update)),
            Err(e) => bad_request(&e),
        },
        (Method::DELETE, ["bridges", id]) => reply(
            shared
                .delete_bridge(id)
                .map(|()| serde_json::json!({ "deleted": id })),
        ),
        (Method::POST, ["bridges", id, "restart"]) => reply(shared.restart_bridge(id)),
        (Method::POST, ["bridges", id, "fault"]) => match parse::<Fault>(body) {
            Ok(fault) => reply(shared.set_bridge_fault(id, fault)),
            Err(e) => bad_request(&e),
        },
        (Method::POST, ["jicofo", shard, "conference"]) => match parse::<ConferenceRequest>(body) {
            Ok(req) => reply(shared.start_conference(shard, &req)),
            Err(e) => bad_request(&e),
        },
        (Method::GET, ["conferences"]) => json(StatusCode::OK, &shared.state().conferences),
        (Method::POST, ["conferences", id, "end"]) => reply(shared.end_conference(id)),

        (Method::GET, ["follow"]) => json(StatusCode::OK, &shared.state().follow),
        (Method::POST, ["follow"]) => match parse::<FollowConfig>(body) {
            Ok(config) => match shared.follow(config) {
                Ok(()) => json(StatusCode::OK, &shared.state().follow),
                Err(Error::Model(e)) => model_error(&e),
                Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
            },
            Err(e) => bad_request(&e),
        },
        (Method::DELETE, ["follow"]) => {
            shared.stop_following();
            json(StatusCode::OK, &serde_json::json!({ "following": false }))
        }

        (_, path) if is_known(path) => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => error(StatusCode::NOT_FOUND, "no such control endpoint"),
    }
}

fn is_known(path: &[&str]) -> bool {
    matches!(
        path,
        ["state"]
            | ["reset"]
            | ["recorders"]
            | ["recorders", _]
            | [
                "recorders",
                _,
                "start-recording"
                    | "stop-recording"
                    | "finish-finalize"
                    | "restart"
                    | "fault"
                    | "calls"
            ]
            | ["jicofo", _]
            | ["jicofo", _, "request-recording" | "fault" | "conference"]
            | ["bridges"]
            | ["bridges", _]
            | ["bridges", _, "restart" | "fault"]
            | ["conferences"]
            | ["conferences", _, "end"]
            | ["follow"]
    )
}
