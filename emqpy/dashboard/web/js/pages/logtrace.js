// Diagnose → Log Trace: traces by client id, topic, IP address or rule id (create, stop,
// delete, download), and a trace's log read chunk by chunk as it grows; Management →
// Logging: the `log` root (console and file handlers).
import { defineComponent, reactive, ref, onUnmounted } from 'vue';
import { useRoute } from 'vue-router';
import { t } from '../i18n.js';
import { api, session, downloadFile } from '../api.js';
import { fail, ok, confirmBox, usePolling, DataTable, Dialog, ConfigForm, formatDate, formatBytes } from '../ui.js';

const enc = encodeURIComponent;
const TYPES = ['clientid', 'topic', 'ip_address', 'ruleid'];

async function download(name) {
  try {
    await downloadFile(`/trace/${enc(name)}/download`, `trace_${name}.zip`);
  } catch (e) { fail(e); }
}

export const LogTrace = defineComponent({
  components: { DataTable, Dialog },
  setup() {
    const rows = ref([]);
    const creating = ref(false);
    const form = reactive({ name: '', type: 'clientid', value: '', payload_encode: 'text', formatter: 'text',
                            minutes: 30 });
    const load = async () => { try { rows.value = await api('GET', '/trace'); } catch (e) { fail(e); } };
    usePolling(load, 5000);
    const columns = [{ key: 'name', label: t('trace.name') }, { key: 'type', label: t('trace.type') },
      { key: 'condition', label: t('trace.condition') }, { key: 'status', label: t('trace.status') },
      { key: 'start_at', label: t('trace.startAt') }, { key: 'end_at', label: t('trace.endAt') },
      { key: 'size', label: t('trace.size') }, { key: 'actions', label: t('app.actions') }];
    async function create() {
      const now = Date.now();
      const body = { name: form.name, type: form.type, [form.type]: form.value,
                     payload_encode: form.payload_encode, formatter: form.formatter,
                     start_at: new Date(now).toISOString(),
                     end_at: new Date(now + form.minutes * 60000).toISOString() };
      try { await api('POST', '/trace', { body }); ok(t('app.created')); creating.value = false; load(); }
      catch (e) { fail(e); }
    }
    async function stop(row) {
      try { await api('PUT', `/trace/${enc(row.name)}/stop`); load(); } catch (e) { fail(e); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      try { await api('DELETE', `/trace/${enc(row.name)}`); ok(t('app.deleted')); load(); } catch (e) { fail(e); }
    }
    async function clearAll() {
      if (!(await confirmBox(t('trace.confirmClear')))) return;
      try { await api('DELETE', '/trace'); ok(t('app.deleted')); load(); } catch (e) { fail(e); }
    }
    const size = (row) => formatBytes(Object.values(row.log_size || {}).reduce((a, x) => a + (x || 0), 0));
    return { t, rows, columns, creating, form, create, stop, remove, clearAll, download, size, TYPES, enc, formatDate };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.logTrace') }}</h1>
      <span><button type="button" class="danger" @click="clearAll">{{ t('trace.clearAll') }}</button>
      <button type="button" class="primary" @click="creating = true">{{ t('app.create') }}</button></span></header>
    <DataTable :columns="columns" :rows="rows" row-key="name" :label="t('menu.logTrace')">
      <template #cell-name="{row}"><router-link :to="'/log-trace/detail/' + enc(row.name)">{{ row.name }}</router-link></template>
      <template #cell-condition="{row}">{{ row[row.type] }}</template>
      <template #cell-status="{row}"><span :class="['status', row.status]">{{ row.status }}</span></template>
      <template #cell-start_at="{row}">{{ formatDate(row.start_at) }}</template>
      <template #cell-end_at="{row}">{{ formatDate(row.end_at) }}</template>
      <template #cell-size="{row}">{{ size(row) }}</template>
      <template #cell-actions="{row}">
        <button type="button" class="link" @click="download(row.name)" :aria-label="t('trace.download') + ' ' + row.name">{{ t('trace.download') }}</button>
        <button v-if="row.status !== 'stopped'" type="button" class="link" @click="stop(row)" :aria-label="t('trace.stop') + ' ' + row.name">{{ t('trace.stop') }}</button>
        <button type="button" class="link danger" @click="remove(row)" :aria-label="t('app.delete') + ' ' + row.name">{{ t('app.delete') }}</button></template>
    </DataTable>
    <Dialog :open="creating" :title="t('app.create')" @close="creating = false">
      <form class="form" @submit.prevent="create">
        <label>{{ t('trace.name') }}<input v-model="form.name" required pattern="[A-Za-z][A-Za-z0-9_\\-]*"></label>
        <label>{{ t('trace.type') }}<select v-model="form.type"><option v-for="ty in TYPES" :key="ty" :value="ty">{{ t('trace.' + ty) }}</option></select></label>
        <label>{{ t('trace.' + form.type) }}<input v-model="form.value" required :aria-label="t('trace.condition')"></label>
        <label>{{ t('trace.payload') }}<select v-model="form.payload_encode"><option>text</option><option>hex</option><option>hidden</option></select></label>
        <label>{{ t('trace.formatter') }}<select v-model="form.formatter"><option>text</option><option>json</option></select></label>
        <label>{{ t('trace.minutes') }}<input v-model.number="form.minutes" type="number" min="1"></label>
        <div class="buttons"><button type="button" @click="creating = false">{{ t('app.cancel') }}</button>
          <button type="submit" class="primary">{{ t('app.create') }}</button></div></form></Dialog></section>`,
});

export const LogTraceDetail = defineComponent({
  setup() {
    const route = useRoute();
    const name = route.params.id;
    const text = ref('');
    let position = 0;
    let stopped = false;
    async function more() {
      try {
        const chunk = await api('GET', `/trace/${enc(name)}/log`, { query: { position, bytes: 64 * 1024 } });
        if (chunk.items) text.value += chunk.items;
        position = chunk.meta.position;
      } catch (e) { if (!stopped) fail(e); }
    }
    usePolling(more, 3000);
    onUnmounted(() => { stopped = true; });
    return { t, name, text, more, download: () => download(name) };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.logTrace') }}: {{ name }}</h1>
      <button type="button" @click="download">{{ t('trace.download') }}</button></header>
    <pre class="payload log" :aria-label="t('trace.log')">{{ text }}</pre></section>`,
});

export const Logging = defineComponent({
  components: { ConfigForm },
  setup() {
    const conf = ref(null);
    const load = async () => { try { conf.value = await api('GET', '/configs/log'); } catch (e) { fail(e); } };
    load();
    async function save(part, edited) {
      try { await api('PUT', '/configs/log', { body: { ...conf.value, [part]: edited } }); ok(t('app.saved')); load(); }
      catch (e) { fail(e); }
    }
    return { t, conf, save, session };
  },
  template: `<section><h1>{{ t('menu.log') }}</h1>
    <template v-if="conf"><h2>{{ t('trace.console') }}</h2>
      <ConfigForm :key="JSON.stringify(conf.console)" :value="conf.console" :label="t('trace.console')" @save="save('console', $event)"></ConfigForm>
      <h2>{{ t('trace.file') }}</h2>
      <ConfigForm :key="JSON.stringify(conf.file)" :value="conf.file" :label="t('trace.file')" @save="save('file', $event)"></ConfigForm></template>
    </section>`,
});
