// What the agents ask the user: the open approvals of each session (GET session/<id>/approvals,
// kept current by the approval:* events) and the card pinned above the command bar that answers
// them: a permission (the command or the diff; Allow / Allow for this session / Deny), a
// question (its options or free text) or a plan (Markdown; Approve / Keep planning).

import { useEffect, useState } from '../vendor/preact/hooks.mjs';
import { get, post } from './api.js';
import { on } from './conn.js';
import { DiffView } from './diff.js';
import { markdownHtml } from './render.js';
import { changed, isViewer, state, toast } from './store.js';
import { html } from './ui.js';

const decidedHere = new Set(); // approvals this page answered: their resolved event is no news
// Approvals seen resolved, so that a list read just before the event is not taken as news.
const resolvedIds = new Set();
const RESOLVED_KEPT = 500;
// An agent asks only during a turn: an idle (or failed) session has no open approval.
const TURN_STATES = new Set(['busy', 'waiting_input', 'connecting']);

/** The open approvals of a session, oldest first. */
export function openApprovals(sessionId) {
  return state.approvals.get(sessionId) || [];
}

export async function loadApprovals(sessionId) {
  const known = new Set(openApprovals(sessionId).map((a) => a.id));
  try {
    const data = await get(`session/${sessionId}/approvals`);
    const listed = data.approvals.filter((a) => !resolvedIds.has(a.id));
    const ids = new Set(listed.map((a) => a.id));
    // Asked while the list was on its way: their events are newer than the list.
    const newer = openApprovals(sessionId).filter((a) => !ids.has(a.id) && !known.has(a.id));
    state.approvals.set(sessionId, [...listed, ...newer]);
    changed();
  } catch (err) {
    if (err.status !== 404) toast(err.message, 'error');
  }
}

const DECIDED = { allow: 'allowed', allow_session: 'allowed for this session', deny: 'denied' };

/** Why an approval went away without this page answering it. */
function resolvedNote(approval, event) {
  const what = approval.kind === 'question' ? 'question' : approval.kind === 'plan' ? 'plan' : 'request';
  const verdict = approval.kind === 'plan' && event.decision === 'allow' ? 'approved' : DECIDED[event.decision];
  if (event.by === 'timeout') return `The ${what} “${approval.title}” timed out: ${verdict}.`;
  if (event.by === 'interrupt') return `The ${what} “${approval.title}” was closed by an interrupt: ${verdict}.`;
  return `The ${what} “${approval.title}” was answered elsewhere: ${verdict}.`;
}

on('event', (event) => {
  if (event.type === 'approval:requested') {
    const list = openApprovals(event.sessionId).filter((a) => a.id !== event.approval.id);
    state.approvals.set(event.sessionId, [...list, event.approval]);
    changed();
  } else if (event.type === 'approval:resolved') {
    resolvedIds.add(event.approvalId);
    if (resolvedIds.size > RESOLVED_KEPT) resolvedIds.delete(resolvedIds.values().next().value);
    const list = openApprovals(event.sessionId);
    const gone = list.find((a) => a.id === event.approvalId);
    state.approvals.set(event.sessionId, list.filter((a) => a.id !== event.approvalId));
    if (gone && !decidedHere.has(event.approvalId)) {
      state.approvalNotes.set(event.sessionId, resolvedNote(gone, event));
    }
    changed();
  }
});

// At load, and after a reconnection (the events missed may not all be replayed), read the open
// approvals of every session in a turn: what needs the user counts those asked before this
// page was open, and a session's state alone does not say how many wait.
on('init', () => {
  for (const id of [...state.approvals.keys()]) {
    const s = state.sessions.get(id);
    if (!s || !TURN_STATES.has(s.state)) state.approvals.delete(id);
  }
  const viewed = state.route.view === 'session' ? state.route.id : null;
  for (const s of state.sessions.values()) {
    if (s.id === viewed || (s.toolType !== 'terminal' && TURN_STATES.has(s.state))) loadApprovals(s.id);
  }
  changed();
});

async function decide(approval, body) {
  decidedHere.add(approval.id);
  try {
    await post(`session/${approval.sessionId}/approvals/${approval.id}`, body);
    state.approvals.set(approval.sessionId, openApprovals(approval.sessionId).filter((a) => a.id !== approval.id));
    changed();
  } catch (err) {
    toast(err.message, 'error');
    if (err.status === 409 || err.status === 404) loadApprovals(approval.sessionId);
  }
}

/** The command, file or arguments a permission is about, as plain text. */
function inputText(approval) {
  const input = approval.input || {};
  if (typeof input === 'string') return input; // cut by the server: the start of its JSON
  if (typeof input.command === 'string') return input.command;
  return JSON.stringify(input, null, 2);
}

/** "Deny" (or "Keep planning") with an optional message to the agent. */
function DenyForm({ approval, label, onCancel }) {
  const [message, setMessage] = useState('');
  const submit = (e) => {
    e.preventDefault();
    decide(approval, { decision: 'deny', ...(message.trim() ? { message: message.trim() } : {}) });
  };
  return html`<form class="approval-deny" onSubmit=${submit}>
    <label>Reason (optional, sent to the agent)
      <textarea rows="2" value=${message} onInput=${(e) => setMessage(e.target.value)}
        placeholder="Why, or what to do instead" /></label>
    <div class="approval-actions">
      <button type="button" class="btn btn-small" onClick=${onCancel}>Cancel</button>
      <button type="submit" class="btn btn-small btn-danger">${label}</button>
    </div>
  </form>`;
}

function Decisions({ approval }) {
  const [denying, setDenying] = useState(false);
  const deny = approval.options.find((o) => o.decision === 'deny');
  if (denying) return html`<${DenyForm} approval=${approval} label=${deny.label} onCancel=${() => setDenying(false)} />`;
  return html`<div class="approval-actions">
    ${approval.options.map((o) => html`<button type="button" key=${o.decision}
      class=${'btn btn-small' + (o.decision === 'allow' ? ' btn-primary' : o.decision === 'deny' ? ' btn-deny' : '')}
      onClick=${() => (o.decision === 'deny' ? setDenying(true) : decide(approval, { decision: o.decision }))}>
      ${o.label}</button>`)}
  </div>`;
}

/** One question of an AskUserQuestion: its options as buttons, or an answer of one's own. */
function Question({ q, answer, onAnswer }) {
  const [own, setOwn] = useState('');
  const picked = (answer || '').split(', ');
  const choose = (label) => {
    if (!q.multiSelect) { onAnswer(label); return; }
    const next = picked.includes(label) ? picked.filter((p) => p && p !== label) : [...picked.filter(Boolean), label];
    onAnswer(next.join(', '));
  };
  return html`<fieldset class="question">
    <legend>${q.header ? html`<span class="muted">${q.header}: </span>` : null}${q.question}</legend>
    <div class="question-options">
      ${(q.options || []).map((o) => html`<button type="button" key=${o.label} class="btn btn-small option"
        aria-pressed=${picked.includes(o.label)} onClick=${() => choose(o.label)}>
        <span>${o.label}</span>${o.description ? html`<span class="muted option-note">${o.description}</span>` : null}
      </button>`)}
    </div>
    <form class="question-own" onSubmit=${(e) => { e.preventDefault(); if (own.trim()) onAnswer(own.trim(), true); }}>
      <label class="sr-only" for=${'own-' + q.question}>Your own answer to: ${q.question}</label>
      <input id=${'own-' + q.question} value=${own} onInput=${(e) => setOwn(e.target.value)}
        placeholder="Or type your own answer" autocomplete="off" />
      <button type="submit" class="btn btn-small" disabled=${!own.trim()}>Answer</button>
    </form>
  </fieldset>`;
}

function Questions({ approval }) {
  const questions = approval.options.filter((q) => q && q.question);
  const [answers, setAnswers] = useState({});
  const answer = (q, text, typed) => {
    const next = { ...answers, [q.question]: text };
    setAnswers(next);
    // One question, answered by a single choice or typed text: that is the whole answer.
    if (questions.length === 1 && (!q.multiSelect || typed)) decide(approval, { decision: 'allow', answers: next });
  };
  const complete = questions.every((q) => answers[q.question]);
  const multi = questions.length > 1 || questions.some((q) => q.multiSelect);
  return html`${questions.map((q) => html`<${Question} key=${q.question} q=${q} answer=${answers[q.question]}
      onAnswer=${(text, typed) => answer(q, text, typed)} />`)}
    <div class="approval-actions">
      <button type="button" class="btn btn-small" onClick=${() => decide(approval, { decision: 'deny' })}>Dismiss</button>
      ${multi ? html`<button type="button" class="btn btn-small btn-primary" disabled=${!complete}
        onClick=${() => decide(approval, { decision: 'allow', answers })}>Send answers</button>` : null}
    </div>`;
}

function ApprovalBody({ approval }) {
  if (approval.kind === 'plan') {
    return html`<div class="approval-body markdown approval-plan"
      dangerouslySetInnerHTML=${{ __html: markdownHtml(String(approval.input.plan || '')) }} />`;
  }
  if (approval.kind === 'question') return null;
  if (approval.diff) return html`<${DiffView} diff=${approval.diff} label=${'Changes to ' + (approval.input.file_path || 'the files')} />`;
  return html`<pre class="approval-body approval-input">${inputText(approval)}</pre>`;
}

const KIND_LABELS = { permission: 'Permission', question: 'Question', plan: 'Plan' };

/** The card above the command bar: the oldest open approval of the session, and how many wait. */
export function ApprovalCard({ s }) {
  const list = openApprovals(s.id);
  const note = state.approvalNotes.get(s.id);
  const dismiss = () => { state.approvalNotes.delete(s.id); changed(); };
  const approval = list[0];
  // A phone's keyboard, still up from sending the prompt, would hide the card: put it away
  // unless something is being typed.
  useEffect(() => {
    const box = document.activeElement;
    if (approval && box && box.id === 'command-input' && !box.value) box.blur();
  }, [approval && approval.id]);
  if (!approval && !note) return null;
  const tab = approval && s.aiTabs.find((t) => t.id === approval.tabId);
  const tabName = tab && s.aiTabs.length > 1 ? tab.name || `Tab ${s.aiTabs.indexOf(tab) + 1}` : null;
  return html`<section class="approval" aria-label="Needs your answer" data-approval-id=${approval ? approval.id : ''}>
    ${note ? html`<div class="approval-note" role="status"><span>${note}</span>
      <button type="button" class="btn btn-small" onClick=${dismiss}>OK</button></div>` : null}
    ${approval ? html`<div class="approval-head">
        <span class=${'approval-kind kind-' + approval.kind}>${KIND_LABELS[approval.kind] || approval.kind}</span>
        <b class="approval-tool">${approval.tool}</b>
        ${tabName ? html`<span class="muted">in ${tabName}</span>` : null}
        <span class="spacer"></span>
        ${list.length > 1 ? html`<span class="approval-count" aria-label=${`1 of ${list.length} waiting`}>1 of ${list.length}</span>` : null}
      </div>
      ${approval.kind === 'question' ? null : html`<div class="approval-title">${approval.title}</div>`}
      <${ApprovalBody} key=${approval.id + '-body'} approval=${approval} />
      ${approval.inputCut ? html`<p class="approval-cut" role="note">Too long to show whole: cut at 64 KiB. Allow runs all of it.</p>` : null}
      ${isViewer() ? html`<p class="muted">View only: the owner answers this.</p>`
        : approval.kind === 'question' ? html`<${Questions} key=${approval.id} approval=${approval} />`
          : html`<${Decisions} key=${approval.id} approval=${approval} />`}` : null}
  </section>`;
}
