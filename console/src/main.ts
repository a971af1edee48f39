/**
 * The call console (issue 15): a single page served at /console by the bridge itself.
 * Hash routes: #/live, #/calls/<CallSid>, #/history; the login form while no token is
 * stored. The admin token lives in sessionStorage only (never in a URL); search terms
 * live in memory only (a number is caller data).
 */
import './style.css';
import { ApiError, getJson, getToken, setToken, setUnauthorizedHandler } from './api';
import { clear, h } from './dom';
import type { Info } from './types';
import { liveView } from './live';
import { callView } from './call';
import { historyView } from './history';

export type Cleanup = () => void;

const app = document.getElementById('app') as HTMLElement;
let info: Info | null = null;
let cleanup: Cleanup | null = null;
/** Shown on the login form after a sign-out the user did not ask for. */
let loginNotice = '';

async function checkToken(token: string): Promise<{ ok: true; info: Info | null } | { ok: false; message: string }> {
  const refusal = (e: unknown): string => {
    if (e instanceof ApiError) {
      if (e.status === 401) return 'Wrong token.';
      if (e.status === 403 && e.code === 'BRIDGE_ERR_ADMIN_DISABLED') return 'The bridge has no BRIDGE_ADMIN_TOKEN set: the console is disabled until it has one.';
      return `The bridge refused: ${e.detail}`;
    }
    return 'The bridge cannot be reached.';
  };
  try {
    return { ok: true, info: await getJson<Info>('/console/api/info', { token }) };
  } catch (e) {
    return { ok: false, message: refusal(e) };
  }
}

function loginView(root: HTMLElement): Cleanup {
  const input = h('input', { id: 'login-token', type: 'password', autocomplete: 'current-password', required: true, spellcheck: 'false', 'data-testid': 'login-token', 'aria-describedby': 'login-help' });
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'login-error', hidden: !loginNotice }, loginNotice);
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-submit' }, 'Sign in');
  loginNotice = '';
  // No `name` on the field: even a submit without this script sends nothing.
  const form = h(
    'form',
    { class: 'login card', 'aria-labelledby': 'login-title', novalidate: true },
    h('h2', { id: 'login-title' }, 'Sign in'),
    h('label', { for: 'login-token' }, 'Admin token'),
    input,
    h('p', { id: 'login-help', class: 'hint' }, "The bridge's BRIDGE_ADMIN_TOKEN. It is kept in this tab only, until you sign out or close it."),
    submit,
    error,
  );
  let alive = true;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) {
      error.textContent = 'Enter the token.';
      error.hidden = false;
      input.focus();
      return;
    }
    submit.disabled = true;
    error.hidden = true;
    void checkToken(token).then((r) => {
      if (!alive) return;
      submit.disabled = false;
      if (!r.ok) {
        error.textContent = r.message;
        error.hidden = false;
        input.select();
        input.focus();
        return;
      }
      setToken(token);
      info = r.info;
      if (!/^#\/(live|history|calls\/.+)$/.test(location.hash)) location.replace('#/live');
      route();
    });
  });
  root.append(form);
  input.focus();
  return () => {
    alive = false;
  };
}

function navLink(href: string, label: string, current: boolean): HTMLAnchorElement {
  return h('a', { href, 'aria-current': current ? 'page' : undefined, 'data-testid': `nav-${label.toLowerCase()}` }, label);
}

function renderShell(section: 'live' | 'history' | 'call' | 'login'): HTMLElement {
  clear(app);
  const signedIn = section !== 'login';
  const infoText = info ? `v${info.version}${info.instance ? ` · ${info.instance}` : ''}${info.pii ? '' : ' · numbers redacted'}` : '';
  const header = h(
    'header',
    { class: 'top' },
    h('h1', {}, 'Call console'),
    signedIn &&
      h(
        'nav',
        { 'aria-label': 'Console' },
        navLink('#/live', 'Live', section === 'live'),
        navLink('#/history', 'History', section === 'history'),
      ),
    signedIn && h('span', { class: 'info', 'data-testid': 'bridge-info' }, infoText),
    signedIn &&
      h(
        'button',
        {
          type: 'button',
          class: 'logout',
          'data-testid': 'logout',
          onclick: () => {
            setToken(null);
            info = null;
            route();
          },
        },
        'Sign out',
      ),
  );
  const main = h('main', { id: 'view', tabindex: '-1' });
  app.append(header, main);
  return main;
}

function route(): void {
  cleanup?.();
  cleanup = null;
  if (!getToken()) {
    document.title = 'Sign in — call console';
    cleanup = loginView(renderShell('login'));
    return;
  }
  if (!info) {
    void getJson<Info>('/console/api/info')
      .then((i) => {
        info = i;
        const el = document.querySelector('[data-testid="bridge-info"]');
        if (el) el.textContent = `v${i.version}${i.instance ? ` · ${i.instance}` : ''}${i.pii ? '' : ' · numbers redacted'}`;
      })
      .catch(() => undefined);
  }
  const hash = location.hash;
  const m = /^#\/calls\/([^/?#]+)$/.exec(hash);
  if (m) {
    let sid = m[1] ?? '';
    try {
      sid = decodeURIComponent(sid);
    } catch {
      /* keep it as is */
    }
    cleanup = callView(renderShell('call'), sid);
  } else if (hash === '#/history') {
    document.title = 'History — call console';
    cleanup = historyView(renderShell('history'));
  } else {
    if (hash !== '#/live') history.replaceState(null, '', '#/live');
    document.title = 'Live calls — call console';
    cleanup = liveView(renderShell('live'));
  }
}

setUnauthorizedHandler(() => {
  if (!getToken()) return;
  setToken(null);
  info = null;
  loginNotice = 'The bridge no longer accepts the token: sign in again.';
  route();
});
// "Skip to content" must not touch the hash (it is the router's).
document.querySelector('a.skip')?.addEventListener('click', (ev) => {
  ev.preventDefault();
  document.getElementById('view')?.focus();
});
window.addEventListener('hashchange', () => {
  route();
  document.getElementById('view')?.focus({ preventScroll: true });
});
route();
