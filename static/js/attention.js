// What needs the user: the dashboard's order, and the count in the title and on the app icon.

import { openApprovals } from './approvals.js';
import { state } from './store.js';

/** An agent asks something (an approval is open) or the session waits for input. */
export function needsYou(s) {
  return s.state === 'waiting_input' || openApprovals(s.id).length > 0;
}

/** The session's last turn failed: its card shows why (the server keeps that preview until
 * the next turn ends); while a new turn runs the session is busy, not failed. */
export function lastTurnFailed(s) {
  return s.state === 'idle' && s.lastResponse != null && s.lastResponse.source === 'error';
}

/** 0 needs you, 1 failed, 2 busy, 3 idle (or anything else). */
function rank(s) {
  if (needsYou(s)) return 0;
  if (s.state === 'error' || lastTurnFailed(s)) return 1;
  if (s.state === 'busy' || s.state === 'connecting') return 2;
  return 3;
}

const lastActivity = (s) => Math.max(s.lastOutputAt || 0, s.createdAt || 0);

/** The sessions, most urgent first; within a rank the most recently active first. */
export function byAttention(sessions) {
  return [...sessions].sort((a, b) => rank(a) - rank(b) || lastActivity(b) - lastActivity(a));
}

/** How many things wait for the user: each open approval, and each session waiting for input
 * that has none (a shell's prompt, say). */
export const needsYouCount = () => [...state.sessions.values()]
  .reduce((count, s) => count + (openApprovals(s.id).length || (needsYou(s) ? 1 : 0)), 0);

let badged = 0;

/** The count in the page title ("(2) Maestro") and, where the browser has it, on the app
 * icon (navigator.setAppBadge: installed PWAs). */
export function showNeedsYouCount(title) {
  const count = needsYouCount();
  document.title = count ? `(${count}) ${title}` : title;
  if (count === badged || !('setAppBadge' in navigator)) return;
  badged = count;
  const done = count ? navigator.setAppBadge(count) : navigator.clearAppBadge();
  done.catch(() => { /* not installed, or not allowed: the title still says it */ });
}
