// Feed follows one change feed over Server-Sent Events and never loses or
// repeats a change across disconnects: it remembers the revision of the last
// event it applied and, whenever the stream ends, opens a new one with
// ?after=<that revision>, so the server replays exactly what was missed.
// The browser's own reconnect is not used: each reconnect is made here, so
// the resume point is always the last applied revision and the connection
// state shown is the true one.
//
// States: connecting (first connection, not yet synced), live (synced, new
// events arrive as they commit), reconnecting (the stream dropped, retrying
// with backoff), offline (the browser reports no network; it retries when
// the network is back), stopped (closed, the server refused for good, or
// one of the last events came: what the stream follows was deleted, and a
// reconnect would only be refused).

export class Feed {
  // url is the stream's URL; after the revision the caller's state is at
  // (null to start from the current one); names the event names to apply;
  // onEvent(ev) applies one; onState(state, detail) shows the state; check,
  // when the stream fails before opening, asks the API why and throws an
  // APIError for a failure that retrying will not mend (e.g. 404), after
  // which the feed stops and onRefused(err) is told; last names the events
  // after which the feed stops once onEvent applied them (chat.deleted,
  // application.deleted: the stream's last event).
  constructor({ url, after = null, names, last = [], onEvent, onState, check, onRefused }) {
    Object.assign(this, { url, after, names, last, onEvent, onState, check, onRefused });
    this.es = null;
    this.timer = 0;
    this.attempt = 0;
    this.synced = false;
    this.stopped = false;
    this.onOnline = () => { if (!this.es && !this.stopped) this.connect(); };
    this.onOffline = () => this.drop();
    addEventListener('online', this.onOnline);
    addEventListener('offline', this.onOffline);
    this.connect();
  }

  setState(state, detail = '') {
    this.state = state;
    this.onState(state, detail);
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    if (!navigator.onLine) {
      this.setState('offline', 'the browser has no network');
      return;
    }
    this.setState(this.synced ? 'reconnecting' : 'connecting');
    const url = this.after === null ? this.url : `${this.url}?after=${this.after}`;
    const es = new EventSource(url);
    this.es = es;
    let opened = false;
    es.onopen = () => { opened = true; };
    for (const name of this.names) es.addEventListener(name, (e) => this.apply(es, e));
    es.addEventListener('synced', (e) => {
      const ev = this.parse(e);
      if (ev && es === this.es) {
        if (this.after === null || ev.revision > this.after) this.after = ev.revision;
        this.synced = true;
        this.attempt = 0;
        this.setState('live');
      }
    });
    es.onerror = () => {
      if (es !== this.es) return;
      this.drop();
      if (!opened && this.check) {
        this.check().then(() => this.retry(), (err) => {
          if (err.retryable) this.retry(err.message);
          else {
            this.stop(err.message);
            this.onRefused?.(err);
          }
        });
      } else {
        this.retry();
      }
    };
  }

  parse(e) {
    try {
      const ev = JSON.parse(e.data);
      return typeof ev.revision === 'number' ? ev : null;
    } catch {
      return null;
    }
  }

  apply(es, e) {
    if (es !== this.es) return;
    const ev = this.parse(e);
    if (!ev) return;
    // A revision at or below the resume point was applied already.
    if (this.after !== null && ev.revision <= this.after) return;
    this.after = ev.revision;
    this.onEvent(ev);
    if (this.last.includes(ev.event)) this.stop();
  }

  // drop closes the current stream, if any, without stopping the feed.
  drop() {
    if (this.es) {
      this.es.close();
      this.es = null;
    }
    if (!navigator.onLine && !this.stopped) this.setState('offline', 'the browser has no network');
  }

  retry(detail = '') {
    if (this.stopped || this.es) return;
    if (!navigator.onLine) {
      this.setState('offline', 'the browser has no network');
      return;
    }
    const delay = Math.min(10000, 250 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt++;
    this.setState('reconnecting', detail);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  stop(detail = '') {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    removeEventListener('online', this.onOnline);
    removeEventListener('offline', this.onOffline);
    if (this.es) {
      this.es.close();
      this.es = null;
    }
    this.setState('stopped', detail);
  }
}
