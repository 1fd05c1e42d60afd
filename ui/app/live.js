// The live tail of one execution: a WebSocket that resumes after the last seq it saw,
// reconnects by itself with a growing delay, and polls the events route meanwhile when
// the socket cannot be opened. Every event reaches onEvents once, in seq order.

import { get, query, socketUrl } from "./api.js";

const POLL_MS = 1000;
const POLL_AFTER_FAILURES = 2; // failed connects in a row before polling starts

export class LiveTail {
  // onEvents(events), onState("connecting" | "live" | "reconnecting" | "polling" | "closed")
  constructor(eid, afterSeq, { onEvents, onState, onFrame }) {
    this.eid = eid;
    this.last = afterSeq;
    this.onEvents = onEvents;
    this.onState = onState;
    this.onFrame = onFrame || (() => {});
    this.closed = false;
    this.failures = 0;
    this.socket = null;
    this.pollTimer = null;
    this.retryTimer = null;
    this.connect();
  }

  setState(state) {
    this.state = state;
    this.onState(state);
  }

  connect() {
    if (this.closed) return;
    this.setState(this.failures ? "reconnecting" : "connecting");
    const ws = new WebSocket(socketUrl(this.eid, this.last));
    this.socket = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.failures = 0;
      this.stopPolling();
      this.setState("live");
    };
    ws.onmessage = (msg) => {
      let frame;
      try {
        frame = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (typeof frame.seq === "number") this.accept([frame]);
      else this.onFrame(frame);
    };
    ws.onclose = () => {
      if (this.socket !== ws || this.closed) return;
      this.socket = null;
      if (!opened) this.failures += 1;
      if (this.failures >= POLL_AFTER_FAILURES) this.startPolling();
      else this.setState("reconnecting");
      const delay = Math.min(500 * 2 ** this.failures, 5000);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    };
  }

  accept(events) {
    const fresh = events.filter((e) => e.seq > this.last).sort((a, b) => a.seq - b.seq);
    if (!fresh.length) return;
    this.last = fresh[fresh.length - 1].seq;
    this.onEvents(fresh);
  }

  startPolling() {
    if (this.pollTimer || this.closed) return;
    this.setState("polling");
    const poll = async () => {
      try {
        const page = await get(`/executions/${encodeURIComponent(this.eid)}/events` +
                               query({ after_seq: this.last, limit: 1000 }));
        this.accept(page.items || []);
      } catch {
        // the next round tries again; the light already says we are not live
      }
    };
    poll();
    this.pollTimer = setInterval(poll, POLL_MS);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  close() {
    this.closed = true;
    this.stopPolling();
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
    this.setState("closed");
  }
}
