//! The fake server's message operations — recall, edit, react — appended as log entries of
//! their own and deduplicated by `(user, client_msg_id)` like sends, and delete for me with
//! its MessagesDeleted notice to the user's other connections.

use bytes::Bytes;
use magpie_proto::convert::text_content;
use magpie_proto::pb::{self, ErrorCode, message_op::Op};
use magpie_proto::{Body, Frame, error_frame, frame};

use super::conn::{Next, Who};
use super::{State, append, fan_out, send_to_user, visible};

pub(super) fn on_message_op(
    st: &mut State,
    id: u64,
    req: pb::MessageOp,
    who: &Who,
) -> (Vec<Frame>, Next) {
    st.ops.push((who.user.clone(), req.client_msg_id.clone()));
    let refuse = |code, message| (vec![error_frame(id, code, message)], Next::Continue);
    if !st.fail_next_sends.is_empty() {
        let code = st.fail_next_sends.remove(0);
        return refuse(code, "injected");
    }
    let key = (who.user.clone(), req.client_msg_id.clone());
    if let Some(original) = st.op_dedup.get(&key) {
        let mut result = original.clone();
        result.duplicate = true;
        return (
            vec![frame(id, Body::MessageOpResult(result))],
            Next::Continue,
        );
    }
    let conv = req.conversation.clone();
    let target = match st
        .logs
        .get(&conv)
        .and_then(|log| log.get(req.seq as usize - 1))
    {
        Some(m) if req.seq > 0 && m.kind == 0 => m.clone(),
        _ => return refuse(ErrorCode::NotFound, "no such message"),
    };
    if !visible(st, &who.user, &conv, req.seq) {
        return refuse(ErrorCode::Forbidden, "not yours");
    }
    let (kind, content) = match req.op {
        Some(Op::Recall(_)) | Some(Op::Edit(_)) if target.from_user != who.user => {
            return refuse(ErrorCode::Forbidden, "not the sender");
        }
        Some(Op::Recall(_)) => (pb::EntryKind::Recall, pb::Content::default()),
        Some(Op::Edit(content)) => (pb::EntryKind::Edit, content),
        Some(Op::React(r)) => {
            let mut content = text_content(&r.emoji);
            let op = if r.add { "add" } else { "remove" };
            content.metadata.insert("op".into(), op.into());
            (pb::EntryKind::Reaction, content)
        }
        None => return refuse(ErrorCode::InvalidArgument, "no op"),
    };
    // What later pulls and history serve for the target.
    let stored = &mut st.logs.get_mut(&conv).unwrap()[req.seq as usize - 1];
    match kind {
        pb::EntryKind::Recall => {
            stored.recalled = true;
            stored.content = Some(pb::Content {
                body: Bytes::new(),
                ..stored.content.clone().unwrap_or_default()
            });
        }
        pb::EntryKind::Edit => {
            stored.edited = true;
            stored.content = Some(content.clone());
        }
        _ => {}
    }
    let entry = pb::Message {
        from_user: who.user.clone(),
        from_device: who.device.clone(),
        client_msg_id: req.client_msg_id.clone(),
        content: Some(content),
        kind: kind as i32,
        target: req.seq,
        ..Default::default()
    };
    let m = append(st, &conv, entry);
    let result = pb::MessageOpResult {
        conversation: conv,
        seq: m.seq,
        duplicate: false,
    };
    st.op_dedup.insert(key, result.clone());
    fan_out(st, &m, Some(who.conn));
    let answer = frame(id, Body::MessageOpResult(result));
    if st.cut_next_ack {
        st.cut_next_ack = false;
        return (vec![], Next::CutAfter(Box::new(answer)));
    }
    (vec![answer], Next::Continue)
}

pub(super) fn delete_for_me(st: &mut State, id: u64, req: pb::DeleteForMe, who: &Who) -> Frame {
    st.deletes
        .push((who.user.clone(), req.conversation.clone(), req.seqs.clone()));
    let seqs: Vec<u64> = req
        .seqs
        .into_iter()
        .filter(|&s| visible(st, &who.user, &req.conversation, s))
        .collect();
    if seqs.is_empty() {
        return error_frame(id, ErrorCode::NotFound, "nothing to delete");
    }
    let notice = pb::MessagesDeleted {
        conversation: req.conversation.clone(),
        seqs: seqs.clone(),
    };
    send_to_user(
        st,
        &who.user,
        &frame(0, Body::MessagesDeleted(notice)),
        Some(who.conn),
    );
    let result = pb::DeleteForMeResult {
        conversation: req.conversation,
        seqs,
    };
    frame(id, Body::DeleteForMeResult(result))
}
