//! Draining, as an operator asks through the cloud: a drained controller or MMR takes no new
//! meetings, and its meetings move one at a time, spread over the deadline so their participants
//! do not all rejoin at once. (A meeting moves whole: all its participants are told to rejoin, so
//! it is never on two MMRs.) Undraining stops the moves and takes new meetings again.

use super::Ctx;
use mc_wire::notify::DrainTarget;
use mc_wire::MmrId;
use std::time::Duration;

pub(super) fn apply(ctx: &Ctx, target: DrainTarget, on: bool, deadline_ms: u64) {
    let mmr = match &target {
        DrainTarget::Controller(id) if id.0 == ctx.config.id => None,
        DrainTarget::Controller(_) => return,
        DrainTarget::Mmr(id) => Some(id.clone()),
    };
    {
        let mut st = ctx.zc.lock().unwrap();
        match &mmr {
            None => st.zc.set_draining(on),
            Some(id) => {
                if !st.zc.set_mmr_draining(id, on) {
                    return; // not one of ours
                }
            }
        }
    }
    let what = mmr.as_ref().map_or_else(
        || format!("controller {}", ctx.config.id),
        |m| format!("MMR {m}"),
    );
    ctx.events.record(format_args!(
        "{what} {} (deadline {deadline_ms} ms)",
        if on { "draining" } else { "undrained" }
    ));
    if on {
        mc_rt::spawn(move_meetings(ctx.clone(), mmr, what, deadline_ms));
    }
}

async fn move_meetings(ctx: Ctx, mmr: Option<MmrId>, what: String, deadline_ms: u64) {
    let meetings = ctx.zc.lock().unwrap().zc.meetings_on(mmr.as_ref());
    let n = meetings.len().max(1) as u64;
    // Leave a tenth of the deadline for the last meeting's participants to land elsewhere.
    let spacing = Duration::from_millis(deadline_ms * 9 / 10 / n);
    let reason = format!("{what} is being drained for maintenance; join again to continue");
    for meeting in meetings {
        let moved = {
            let mut st = ctx.zc.lock().unwrap();
            // Undrained meanwhile, or the meeting already ended or moved: stop or skip.
            if !draining(&st.zc, mmr.as_ref()) {
                return;
            }
            if !st.zc.meetings_on(mmr.as_ref()).contains(&meeting) {
                continue;
            }
            let moved = st.zc.move_meeting(meeting, &reason);
            ctx.drain(&mut st);
            moved
        };
        ctx.events.record(format_args!(
            "moved meeting {meeting} ({moved} participants) off {what}"
        ));
        mc_rt::sleep(spacing).await;
    }
    ctx.events.record(format_args!("{what} drained"));
}

fn draining(zc: &mc_core::zc::Zc, mmr: Option<&MmrId>) -> bool {
    match mmr {
        None => zc.is_draining(),
        Some(id) => zc.is_mmr_draining(id),
    }
}
