// Shared building blocks of the pages: notices, the confirm box, dialogs, tables with paging,
// polling that pauses while the tab is hidden, and formatters. One of each; pages compose them.
import { reactive, ref, onMounted, onUnmounted, defineComponent } from 'vue';
import { t } from './i18n.js';

// -- notices: errors show the API's code and message --------------------------------------
export const notices = reactive([]);
let noticeSeq = 0;

export function notify(kind, text, ms = 5000) {
  const id = ++noticeSeq;
  notices.push({ id, kind, text });
  setTimeout(() => {
    const i = notices.findIndex((n) => n.id === id);
    if (i >= 0) notices.splice(i, 1);
  }, ms);
}
export const ok = (text) => notify('ok', text, 3000);
export const fail = (e) => notify('error', e && e.code ? `${e.code}: ${e.message}` : String(e), 8000);

export const NoticeHost = defineComponent({
  setup: () => ({ notices }),
  template: `<div class="notices" role="status" aria-live="polite">
    <div v-for="n in notices" :key="n.id" :class="['notice', n.kind]">{{ n.text }}</div></div>`,
});

// -- modals and the keyboard ---------------------------------------------------------------
// v-modal on a dialog's overlay: focus moves into the dialog when it opens (to the element
// already focused inside, else its first field, else its first button), Tab and Shift+Tab
// cycle inside it, and when it closes focus returns to the control outside any dialog that
// had it last (the one that opened it, also through a chain of dialogs). When that control
// goes away (the Delete button of a row just deleted), focus goes to the page's heading
// rather than being lost to the document.
const FOCUSABLE = 'button:not([disabled]), a[href], input:not([disabled]):not([type=hidden]), '
  + 'select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';
let lastOutside = null;
let returnedTo = null;  // the control a closed dialog gave the focus back to, until focus moves on
document.addEventListener('focusin', (e) => {
  if (!e.target.closest('.overlay')) lastOutside = e.target;
  if (e.target !== returnedTo) returnedTo = null;
});

function focusHeading() {
  const heading = document.querySelector('main h1');
  if (heading) { heading.setAttribute('tabindex', '-1'); heading.focus(); }
}

new MutationObserver(() => {
  if (returnedTo && !returnedTo.isConnected && document.activeElement === document.body) {
    returnedTo = null;
    focusHeading();
  }
}).observe(document.documentElement, { childList: true, subtree: true });

function focusables(el) {
  return [...el.querySelectorAll(FOCUSABLE)].filter((x) => x.checkVisibility());
}

function trapTab(e) {
  if (e.key !== 'Tab') return;
  const items = focusables(e.currentTarget);
  if (!items.length) return;
  const first = items[0], last = items[items.length - 1];
  const inside = e.currentTarget.contains(document.activeElement);
  if (e.shiftKey && (document.activeElement === first || !inside)) { last.focus(); e.preventDefault(); }
  else if (!e.shiftKey && (document.activeElement === last || !inside)) { first.focus(); e.preventDefault(); }
}

export const modal = {
  mounted(el) {
    el.addEventListener('keydown', trapTab);
    if (el.contains(document.activeElement)) return;
    const items = focusables(el);
    const target = items.find((x) => x.matches('input, select, textarea')) || items.find((x) => x.matches('.primary')) || items[0];
    if (target) target.focus();
  },
  unmounted() {
    // after the DOM update: another dialog may have opened in this one's place
    setTimeout(() => {
      if (document.querySelector('.overlay')) return;
      if (lastOutside && lastOutside.isConnected) { lastOutside.focus(); returnedTo = lastOutside; }
      else focusHeading();
    });
  },
};

// -- the confirm box: await confirmBox(text, {ok: 'Logout'}) -> true | false -----------------
const box = reactive({ open: false, text: '', okLabel: '', resolve: null });

export function confirmBox(text, { okLabel } = {}) {
  return new Promise((resolve) => {
    Object.assign(box, { open: true, text, okLabel: okLabel || t('app.confirm'), resolve });
  });
}

export const ConfirmHost = defineComponent({
  directives: { modal },
  setup() {
    const answer = (v) => { box.open = false; box.resolve && box.resolve(v); };
    return { box, answer, t };
  },
  template: `<div v-if="box.open" class="overlay" v-modal @keydown.esc="answer(false)">
    <div class="dialog small" role="alertdialog" aria-modal="true" :aria-label="box.text">
      <p>{{ box.text }}</p>
      <div class="buttons">
        <button type="button" @click="answer(false)">{{ t('app.cancel') }}</button>
        <button type="button" class="primary" v-focus @click="answer(true)">{{ box.okLabel }}</button>
      </div></div></div>`,
});

// -- dialogs ------------------------------------------------------------------------------
export const Dialog = defineComponent({
  props: { title: String, open: Boolean },
  emits: ['close'],
  directives: { modal },
  template: `<div v-if="open" class="overlay" v-modal @keydown.esc="$emit('close')">
    <div class="dialog" role="dialog" aria-modal="true" :aria-label="title">
      <header><h2>{{ title }}</h2>
        <button type="button" class="icon" aria-label="Close" @click="$emit('close')">×</button></header>
      <slot></slot></div></div>`,
});

// -- tables and paging --------------------------------------------------------------------
// columns: [{key, label}], a cell's content can be replaced with the slot `cell-<key>`.
export const DataTable = defineComponent({
  props: { columns: Array, rows: Array, rowKey: { type: String, default: 'id' },
           selectable: Boolean, selected: Array, loading: Boolean, label: String },
  emits: ['update:selected'],
  setup(props, { emit }) {
    const toggle = (key, on) => {
      const next = new Set(props.selected || []);
      on ? next.add(key) : next.delete(key);
      emit('update:selected', [...next]);
    };
    const toggleAll = (on) => emit('update:selected', on ? props.rows.map((r) => r[props.rowKey]) : []);
    return { toggle, toggleAll, t, fmt: formatCell };
  },
  template: `<table class="data" :aria-label="label" :aria-busy="loading ? 'true' : 'false'">
    <thead><tr>
      <th v-if="selectable"><input type="checkbox" :aria-label="t('clients.select')"
          :checked="rows.length > 0 && (selected || []).length === rows.length"
          @change="toggleAll($event.target.checked)"></th>
      <th v-for="c in columns" :key="c.key" scope="col">{{ c.label }}</th></tr></thead>
    <tbody>
      <tr v-if="!rows.length"><td :colspan="columns.length + (selectable ? 1 : 0)" class="empty">
        {{ loading ? t('app.loading') : t('app.none') }}</td></tr>
      <tr v-for="row in rows" :key="row[rowKey]">
        <td v-if="selectable"><input type="checkbox" :aria-label="t('clients.select') + ' ' + row[rowKey]"
            :checked="(selected || []).includes(row[rowKey])"
            @change="toggle(row[rowKey], $event.target.checked)"></td>
        <td v-for="c in columns" :key="c.key">
          <slot :name="'cell-' + c.key" :row="row">{{ fmt(row[c.key]) }}</slot></td></tr>
    </tbody></table>`,
});

// meta: the API's {page, limit, count?, hasnext}
export const Pager = defineComponent({
  props: { meta: Object },
  emits: ['page', 'limit'],
  setup: () => ({ t, sizes: [10, 20, 50, 100] }),
  template: `<nav class="pager" :aria-label="t('app.page')" v-if="meta">
    <span v-if="meta.count !== undefined">{{ t('app.total') }}: {{ meta.count }}</span>
    <label>{{ t('app.perPage') }}
      <select :value="meta.limit" @change="$emit('limit', Number($event.target.value))">
        <option v-for="s in sizes" :key="s" :value="s">{{ s }}</option></select></label>
    <button type="button" :disabled="meta.page <= 1" @click="$emit('page', meta.page - 1)"
      :aria-label="t('app.prev')">‹</button>
    <span>{{ t('app.page') }} {{ meta.page }}</span>
    <button type="button" :disabled="!meta.hasnext" @click="$emit('page', meta.page + 1)"
      :aria-label="t('app.next')">›</button></nav>`,
});

// A paged list: state.rows/meta, load(page), with the caller's query builder.
export function usePaged(path, query = () => ({}), api) {
  const state = reactive({ rows: [], meta: { page: 1, limit: 20, hasnext: false }, loading: false });
  async function load(page = state.meta.page, limit = state.meta.limit) {
    state.loading = true;
    try {
      const answer = await api('GET', path(), { query: { ...query(), page, limit } });
      state.rows = answer.data || [];
      state.meta = { ...answer.meta, page: answer.meta?.page ?? page, limit: answer.meta?.limit ?? limit };
    } catch (e) { fail(e); } finally { state.loading = false; }
  }
  return { state, load };
}

// -- polling that stops while the tab is hidden ---------------------------------------------
export function usePolling(fn, ms) {
  let timer = null;
  const tick = () => { if (!document.hidden) fn(); };
  const onVisible = () => { if (!document.hidden) fn(); };
  onMounted(() => {
    fn();
    timer = setInterval(tick, ms);
    document.addEventListener('visibilitychange', onVisible);
  });
  onUnmounted(() => {
    clearInterval(timer);
    document.removeEventListener('visibilitychange', onVisible);
  });
}

// -- formatters ----------------------------------------------------------------------------
export function formatCell(v) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'boolean') return v ? t('app.yes') : t('app.no');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function formatDate(v) {
  if (v === null || v === undefined || v === 'infinity' || v === '') return t('app.never');
  const d = typeof v === 'number' ? new Date(v) : new Date(v);
  return isNaN(d) ? String(v) : d.toLocaleString();
}

export function formatDuration(ms) {
  let s = Math.floor((ms || 0) / 1000);
  const d = Math.floor(s / 86400); s %= 86400;
  const h = Math.floor(s / 3600); s %= 3600;
  const m = Math.floor(s / 60); s %= 60;
  return [d && `${d}d`, (d || h) && `${h}h`, (d || h || m) && `${m}m`, `${s}s`].filter(Boolean).join(' ');
}

export function formatBytes(n) {
  if (typeof n !== 'number') return formatCell(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export const focus = { mounted: (el) => el.focus() };

export async function copyText(text) {
  try { await navigator.clipboard.writeText(text); ok(t('app.copied')); }
  catch {  // clipboard needs a secure context: fall back to selecting the text
    const area = document.createElement('textarea');
    area.value = text; document.body.appendChild(area); area.select();
    document.execCommand('copy'); area.remove(); ok(t('app.copied'));
  }
}

export { ref };

// -- a config object as a form ------------------------------------------------------------
// Shows `keys` of `value` (all keys when omitted) with an input per type: a switch for
// booleans, a number field, text, or JSON for lists and objects. Emits `save` with the edited
// keys; a JSON field that does not parse is reported and nothing is sent.
export const ConfigForm = defineComponent({
  props: { value: Object, keys: Array, label: String, saveLabel: String },
  emits: ['save'],
  setup(props, { emit }) {
    const draft = reactive({});
    const kinds = {};
    const shownKeys = () => props.keys || Object.keys(props.value || {});
    function reset() {
      for (const k of shownKeys()) {
        const v = props.value?.[k];
        kinds[k] = typeof v === 'boolean' ? 'bool' : typeof v === 'number' ? 'number'
          : (v !== null && typeof v === 'object') ? 'json' : 'text';
        draft[k] = kinds[k] === 'json' ? JSON.stringify(v, null, 2) : v;
      }
    }
    reset();
    function save() {
      const out = {};
      for (const k of shownKeys()) {
        if (kinds[k] === 'json') {
          try { out[k] = JSON.parse(draft[k]); }
          catch (e) { fail({ code: 'BAD_REQUEST', message: `${k}: not valid JSON (${e.message})` }); return; }
        } else if (kinds[k] === 'number') out[k] = Number(draft[k]);
        else out[k] = draft[k];
      }
      emit('save', out);
    }
    return { t, draft, kinds, shownKeys, save, reset };
  },
  template: `<form class="config-form" @submit.prevent="save" :aria-label="label">
    <label v-for="k in shownKeys()" :key="k" :class="{inline: kinds[k] === 'bool'}">
      <span class="key">{{ k }}</span>
      <input v-if="kinds[k] === 'bool'" type="checkbox" role="switch" v-model="draft[k]" :aria-label="k">
      <input v-else-if="kinds[k] === 'number'" type="number" step="any" v-model="draft[k]" :aria-label="k">
      <textarea v-else-if="kinds[k] === 'json'" v-model="draft[k]" rows="3" :aria-label="k"></textarea>
      <input v-else v-model="draft[k]" :aria-label="k"></label>
    <div class="buttons"><button type="button" @click="reset">{{ t('app.reset') }}</button>
      <button type="submit" class="primary">{{ saveLabel || t('app.save') }}</button></div></form>`,
});
