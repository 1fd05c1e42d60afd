// The execution the page follows: its events (each once, in seq order) from the live tail,
// its detail from the API, refreshed as events arrive, and the tail closed once it ends.

import { get } from "./api.js";
import { useEffect, useRef, useState } from "./lib.js";
import { LiveTail } from "./live.js";
import { FINAL, mergeEvents } from "./model.js";

const REFRESH_MS = 150;

export function useExecution(eid, generation, onProblem) {
  const [events, setEvents] = useState([]);
  const [detail, setDetail] = useState(null);
  const [connection, setConnection] = useState("closed");
  const tail = useRef(null);
  const lastSeq = useRef(0);

  useEffect(() => {
    // A new execution starts from nothing; a new generation of the same one (after a
    // retry or rerun) resumes after the last event already shown.
    setEvents((known) => (known.length && known[0].execution_id === eid ? known : []));
    if (!eid) return undefined;
    let alive = true;
    let timer = null;
    let ended = false;
    const refresh = async () => {
      try {
        const d = await get(`/executions/${encodeURIComponent(eid)}`);
        if (!alive) return;
        setDetail(d);
        // The detail is read from the projections, a moment behind the live events: read
        // it again until it has caught up with the last event shown.
        if ((d.last_seq || 0) < lastSeq.current) timer = setTimeout(refresh, 300);
        else if (ended && FINAL.has(d.status) && tail.current) tail.current.close();
      } catch (err) {
        if (alive && err.status !== 404) onProblem(err);
        if (alive && err.status === 404) timer = setTimeout(refresh, 300);
      }
    };
    const soon = () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, REFRESH_MS);
    };
    if (!(events.length && events[0].execution_id === eid)) lastSeq.current = 0;
    const after = lastSeq.current;
    tail.current = new LiveTail(eid, after, {
      onEvents: (fresh) => {
        lastSeq.current = fresh[fresh.length - 1].seq;
        setEvents((known) => mergeEvents(known, fresh));
        if (fresh.some((e) => e.event_type === "execution_completed")) ended = true;
        if (fresh.some((e) => e.event_type === "execution_resumed")) ended = false;
        soon();
      },
      onState: (state) => alive && setConnection(state),
      onFrame: (frame) => {
        if (frame.type === "error") onProblem(frame);
      },
    });
    refresh();
    return () => {
      alive = false;
      clearTimeout(timer);
      tail.current.close();
      tail.current = null;
    };
    // events is read once, to resume a generation; re-subscribing on every event is wrong
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [eid, generation]);

  return { events, detail: detail && detail.execution_id === eid ? detail : null, connection };
}
