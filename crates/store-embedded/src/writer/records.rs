//! Staging record-store writes, alone (`write_records`) or with an append.

use magpie_store::{RecordWrite, StoreError};
use magpie_types::AppId;

use super::{MAX_VALUE_LEN, Staged};
use crate::{codec, keys};

/// A record write ready to stage: its storage key and encoded value (`None` deletes).
pub(super) type PreparedRecord = (Vec<u8>, Option<Vec<u8>>);

/// Builds the keys and encodes the values of `writes`, so that staging them cannot fail;
/// fails without effect if any of them cannot be stored.
pub(super) fn prepare_records(
    app: &AppId,
    writes: Vec<RecordWrite>,
) -> Result<Vec<PreparedRecord>, StoreError> {
    writes
        .into_iter()
        .map(|w| {
            let key = keys::record_key(app, w.table, &w.key)?;
            let value = w.value.map(|v| codec::encode_record(&v)).transpose()?;
            if value.as_ref().is_some_and(|v| v.len() > MAX_VALUE_LEN) {
                return Err(StoreError::Backend("record too large to store".into()));
            }
            Ok((key, value))
        })
        .collect()
}

/// Stages `writes` in order (a later write of a key replaces an earlier one), all or none.
pub(super) fn stage_records(
    staged: &mut Staged,
    app: &AppId,
    writes: Vec<RecordWrite>,
) -> Result<(), StoreError> {
    let prepared = prepare_records(app, writes)?;
    staged.records.extend(prepared);
    Ok(())
}
