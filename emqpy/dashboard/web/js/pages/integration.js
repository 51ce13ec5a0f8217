// Integration → Connector, and the Actions (Sink) and Sources tabs of Rules: one page set for
// the three kinds of data-integration entries, as their APIs are the same shape
// (/connectors, /actions, /sources: list, create, get, put, delete, enable, start, metrics).
import { defineComponent, ref, computed } from 'vue';
import { useRoute, useRouter } from 'vue-router';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, usePolling, DataTable, ConfigForm, formatCell } from '../ui.js';

const enc = encodeURIComponent;
const RESOURCE_OPTS = { worker_pool_size: 16, request_ttl: '45s', inflight_window: 100,
                        max_buffer_bytes: '256MB', health_check_interval: '15s', query_mode: 'async' };
// kind -> its API root, its page route, and the settings a new entry of each type starts from
export const KINDS = {
  connectors: { route: '/connector', title: 'menu.connector', hasMetrics: false, templates: {
    http: { url: 'http://127.0.0.1:8080', headers: { 'content-type': 'application/json' }, connect_timeout: '15s',
            pool_size: 8, enable_pipelining: 100, ssl: { enable: false } },
    mqtt: { server: '127.0.0.1:1883', proto_ver: 'v4', clientid_prefix: '', username: '', password: '',
            keepalive: '160s', clean_start: true, bridge_mode: false, ssl: { enable: false } } } },
  actions: { route: '/rule/actions', title: 'integration.actions', hasMetrics: true, templates: {
    http: { connector: '', parameters: { method: 'post', path: '', headers: {}, body: '${payload}' },
            resource_opts: RESOURCE_OPTS },
    mqtt: { connector: '', parameters: { topic: 'remote/${topic}', qos: 1, retain: false, payload: '${payload}' },
            resource_opts: RESOURCE_OPTS } } },
  sources: { route: '/rule/source', title: 'integration.sources', hasMetrics: true, templates: {
    mqtt: { connector: '', parameters: { topic: 'remote/#', qos: 1 } } } },
};

export const EntryList = defineComponent({
  components: { DataTable },
  props: { kind: String },
  setup(props) {
    const kind = KINDS[props.kind];
    const rows = ref([]);
    const load = async () => { try { rows.value = await api('GET', `/${props.kind}`); } catch (e) { fail(e); } };
    usePolling(load, 5000);
    const idOf = (row) => `${row.type}:${row.name}`;
    const columns = [{ key: 'name', label: t('integration.name') }, { key: 'type', label: t('integration.type') },
      { key: 'status', label: t('integration.status') }, { key: 'enable', label: t('app.enable') },
      { key: 'actions', label: t('app.actions') }];
    async function toggle(row, on) {
      try { await api('PUT', `/${props.kind}/${enc(idOf(row))}/enable/${on}`); load(); } catch (e) { fail(e); load(); }
    }
    async function start(row) {
      try { await api('POST', `/${props.kind}/${enc(idOf(row))}/start`); ok(t('integration.started')); load(); }
      catch (e) { fail(e); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      try { await api('DELETE', `/${props.kind}/${enc(idOf(row))}`); ok(t('app.deleted')); load(); } catch (e) { fail(e); }
    }
    return { t, kind, rows, columns, toggle, start, remove, idOf, enc };
  },
  template: `<section><header class="page-head"><h1>{{ t(kind.title) }}</h1>
      <router-link class="button primary" :to="kind.route + '/create'">{{ t('app.create') }}</router-link></header>
    <DataTable :columns="columns" :rows="rows.map(r => ({...r, _id: idOf(r)}))" row-key="_id" :label="t(kind.title)">
      <template #cell-name="{row}"><router-link :to="kind.route + '/' + enc(row._id)">{{ row.name }}</router-link></template>
      <template #cell-status="{row}"><span :class="['status', row.status]" :title="row.status_reason">{{ row.status }}</span></template>
      <template #cell-enable="{row}"><input type="checkbox" role="switch" :checked="row.enable !== false"
        :aria-label="t('app.enable') + ' ' + row._id" @change="toggle(row, $event.target.checked)"></template>
      <template #cell-actions="{row}">
        <button type="button" class="link" @click="start(row)" :aria-label="t('integration.start') + ' ' + row._id">{{ t('integration.start') }}</button>
        <button type="button" class="link danger" @click="remove(row)" :aria-label="t('app.delete') + ' ' + row._id">{{ t('app.delete') }}</button></template>
    </DataTable></section>`,
});

export const EntryCreate = defineComponent({
  components: { ConfigForm },
  props: { kind: String },
  setup(props) {
    const router = useRouter();
    const kind = KINDS[props.kind];
    const types = Object.keys(kind.templates);
    const type = ref(types[0]);
    const name = ref('');
    const connectors = ref([]);
    if (props.kind !== 'connectors') {
      api('GET', '/connectors').then((all) => { connectors.value = all; }).catch(() => {});
    }
    const template = computed(() => {
      const tpl = { ...kind.templates[type.value] };
      if ('connector' in tpl) tpl.connector = connectors.value.find((c) => c.type === type.value)?.name || '';
      return tpl;
    });
    async function create(settings) {
      try {
        await api('POST', `/${props.kind}`, { body: { type: type.value, name: name.value, ...settings } });
        ok(t('app.created')); router.push(kind.route);
      } catch (e) { fail(e); }
    }
    return { t, kind, types, type, name, template, create, connectors };
  },
  template: `<section><h1>{{ t(kind.title) }}: {{ t('app.create') }}</h1>
    <div class="toolbar">
      <label>{{ t('integration.type') }} <select v-model="type"><option v-for="ty in types" :key="ty" :value="ty">{{ ty }}</option></select></label>
      <label>{{ t('integration.name') }} <input v-model="name" required pattern="[A-Za-z0-9][A-Za-z0-9_\\-]*"></label></div>
    <ConfigForm :key="type + connectors.length" :value="template" :label="t('integration.settings')"
      :save-label="t('app.create')" @save="create"></ConfigForm></section>`,
});

export const EntryDetail = defineComponent({
  components: { ConfigForm },
  props: { kind: String },
  setup(props) {
    const route = useRoute();
    const kind = KINDS[props.kind];
    const id = route.params.id;
    const entry = ref(null);
    const metrics = ref(null);
    const SHOWN = ['type', 'name', 'status', 'status_reason', 'error', 'node_status', 'actions', 'sources', 'rules'];
    const editable = computed(() => {
      if (!entry.value) return null;
      return Object.fromEntries(Object.entries(entry.value).filter(([k]) => !SHOWN.includes(k)));
    });
    const load = async () => { try { entry.value = await api('GET', `/${props.kind}/${enc(id)}`); } catch (e) { fail(e); } };
    load();
    if (kind.hasMetrics) {
      usePolling(async () => {
        try { metrics.value = (await api('GET', `/${props.kind}/${enc(id)}/metrics`)).metrics; } catch { /* gone */ }
      }, 5000);
    }
    async function save(edited) {
      try { await api('PUT', `/${props.kind}/${enc(id)}`, { body: edited }); ok(t('app.saved')); load(); } catch (e) { fail(e); }
    }
    async function resetMetrics() {
      try { await api('PUT', `/${props.kind}/${enc(id)}/metrics/reset`); ok(t('app.saved')); } catch (e) { fail(e); }
    }
    return { t, id, kind, entry, editable, metrics, save, resetMetrics, formatCell };
  },
  template: `<section><h1>{{ id }}</h1>
    <dl v-if="entry" class="facts"><dt>{{ t('integration.status') }}</dt><dd :class="['status', entry.status]">{{ entry.status }}</dd>
      <template v-if="entry.status_reason"><dt>{{ t('integration.reason') }}</dt><dd>{{ entry.status_reason }}</dd></template>
      <template v-if="entry.rules"><dt>{{ t('menu.rules') }}</dt><dd>{{ entry.rules.join(', ') || '—' }}</dd></template>
      <template v-if="entry.actions"><dt>{{ t('integration.actions') }}</dt><dd>{{ entry.actions.join(', ') || '—' }}</dd></template></dl>
    <template v-if="metrics"><h2>{{ t('rules.metrics') }} <button type="button" class="link" @click="resetMetrics">{{ t('app.reset') }}</button></h2>
      <dl class="facts"><template v-for="(v, k) in metrics" :key="k"><dt>{{ k }}</dt><dd :data-metric="k">{{ formatCell(v) }}</dd></template></dl></template>
    <h2>{{ t('integration.settings') }}</h2>
    <ConfigForm v-if="editable" :key="JSON.stringify(editable)" :value="editable" :label="t('integration.settings')" @save="save"></ConfigForm>
    </section>`,
});
