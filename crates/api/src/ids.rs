//! Ids from paths and bodies, parsed once at the edge into the domain types; a bad one is
//! a 400 that names the field.

use magpie_types::{AppId, ClientMsgId, ConvId, DeviceId, GroupId, RoomId, UserId};

use crate::error::ApiError;

/// A user id from `field`.
pub fn user(field: &str, s: &str) -> Result<UserId, ApiError> {
    UserId::new(s).map_err(|e| ApiError::field(field, e))
}

/// User ids from the list `field` (errors name the index: `field[3]`).
pub fn users(field: &str, list: &[String]) -> Result<Vec<UserId>, ApiError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| user(&format!("{field}[{i}]"), s))
        .collect()
}

/// A group id from `field`.
pub fn group(field: &str, s: &str) -> Result<GroupId, ApiError> {
    GroupId::new(s).map_err(|e| ApiError::field(field, e))
}

/// A room id from `field`.
pub fn room(field: &str, s: &str) -> Result<RoomId, ApiError> {
    RoomId::new(s).map_err(|e| ApiError::field(field, e))
}

/// An app id from `field`.
pub fn app(field: &str, s: &str) -> Result<AppId, ApiError> {
    AppId::new(s).map_err(|e| ApiError::field(field, e))
}

/// A device id from `field`.
pub fn device(field: &str, s: &str) -> Result<DeviceId, ApiError> {
    DeviceId::new(s).map_err(|e| ApiError::field(field, e))
}

/// A client message id from `field`.
pub fn client_msg_id(field: &str, s: &str) -> Result<ClientMsgId, ApiError> {
    ClientMsgId::new(s).map_err(|e| ApiError::field(field, e))
}

/// A conversation id (`p2p:<a>:<b>` or `g:<group>`) from `field`.
pub fn conv(field: &str, s: &str) -> Result<ConvId, ApiError> {
    ConvId::parse(s).map_err(|e| ApiError::field(field, e))
}
