// Live events (SPEC §4) over Server-Sent Events.
//
// The browser's EventSource reconnects by itself after a dropped
// connection and sends the Last-Event-ID header, so the server replays the
// message and notification events that were missed. When the server
// refuses the stream (an HTTP error: 401, 503 …) EventSource gives up;
// then this module reconnects with a back-off and passes the last id as
// ?lastEventId=, which the server accepts in place of the header.

const EVENT_TYPES = ['message', 'notification', 'presence', 'membership', 'webhook', 'reset'];

export class Live {
  /**
   * handlers: { message, notification, presence, membership, webhook,
   * reset: fn(data), state: fn('connecting'|'live'|'reconnecting'|'offline'),
   * resync: fn() called after a reconnect that could not resume,
   * beforeRetry: async fn() → false to stop (e.g. the session ended) }
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.lastEventId = '';
    this.source = null;
    this.retryTimer = 0;
    this.attempt = 0;
    this.everOpened = false;
    this.interrupted = false;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.source = null;
  }

  connect() {
    if (this.stopped) return;
    const url = '/api/v1/events' + (this.lastEventId ? '?lastEventId=' + encodeURIComponent(this.lastEventId) : '');
    const es = new EventSource(url);
    this.source = es;
    this.setState(this.everOpened ? 'reconnecting' : 'connecting');
    es.addEventListener('open', () => {
      this.attempt = 0;
      this.setState('live');
      if (this.everOpened && this.interrupted && !this.lastEventId) {
        // Nothing to resume from: whatever happened meanwhile is only
        // in the API, so the app reloads what it shows.
        this.handlers.resync?.();
      }
      this.everOpened = true;
      this.interrupted = false;
    });
    es.addEventListener('error', () => {
      if (this.source !== es) return;
      this.interrupted = true;
      if (es.readyState === EventSource.CLOSED) {
        this.setState('offline');
        this.scheduleRetry();
      } else {
        this.setState('reconnecting'); // the browser retries by itself
      }
    });
    for (const type of EVENT_TYPES) {
      es.addEventListener(type, (e) => {
        if (this.source !== es) return;
        if (e.lastEventId) this.lastEventId = e.lastEventId;
        let data;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        try {
          this.handlers[type]?.(data);
        } catch (err) {
          console.error(`handling ${type} event`, err);
        }
      });
    }
  }

  scheduleRetry() {
    if (this.source) this.source.close();
    this.source = null;
    clearTimeout(this.retryTimer);
    const base = Math.min(30000, 1000 * 2 ** this.attempt);
    this.attempt++;
    const delay = base / 2 + Math.random() * base / 2;
    this.retryTimer = setTimeout(async () => {
      if (this.stopped) return;
      if (this.handlers.beforeRetry && (await this.handlers.beforeRetry()) === false) return;
      this.connect();
    }, delay);
  }

  setState(s) {
    this.handlers.state?.(s);
  }
}
