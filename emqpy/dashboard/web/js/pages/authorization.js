// Access Control → Authorization: the sources (status, metrics, enable, order, delete), the
// settings (no match, deny action, cache) with "Clear Cache", creating a source, and a source's
// detail: its settings, and for the built-in database its rules per client, user and for all.
import { defineComponent, reactive, ref, computed } from 'vue';
import { useRoute, useRouter } from 'vue-router';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, usePaged, usePolling, DataTable, Pager, ConfigForm, formatCell } from '../ui.js';

const enc = encodeURIComponent;
const TEMPLATES = {
  file: { rules: '{allow, {username, {re, "^dashboard$"}}, subscribe, ["$SYS/#"]}.\n{allow, all}.' },
  built_in_database: { max_rules: 100 },
  http: { method: 'post', url: 'http://127.0.0.1:8080/authz', headers: { 'content-type': 'application/json' },
          body: { username: '${username}', topic: '${topic}', action: '${action}' }, request_timeout: '5s',
          connect_timeout: '15s', pool_size: 8, enable_pipelining: 100, ssl: { enable: false } },
  redis: { redis_type: 'single', server: '127.0.0.1:6379', database: 0, password: '', cmd: 'HGETALL mqtt_acl:${username}' },
  postgresql: { server: '127.0.0.1:5432', database: 'mqtt', username: 'postgres', password: '',
                query: 'SELECT action, permission, topic FROM mqtt_acl where username = ${username}' },
};
const NAMES = { file: 'File', built_in_database: 'Built-in Database', http: 'HTTP Server', redis: 'Redis', postgresql: 'PostgreSQL' };

export const Authorization = defineComponent({
  components: { DataTable, ConfigForm },
  setup() {
    const rows = ref([]);
    const status = reactive({});
    const settings = ref(null);
    async function load() {
      try {
        rows.value = (await api('GET', '/authorization/sources')).sources;
        for (const r of rows.value) {
          api('GET', `/authorization/sources/${r.type}/status`).then((s) => { status[r.type] = s; }).catch(() => {});
        }
      } catch (e) { fail(e); }
    }
    usePolling(load, 10000);
    api('GET', '/authorization/settings').then((s) => { settings.value = s; }).catch(fail);
    const columns = [{ key: 'type', label: t('authz.type') }, { key: 'status', label: t('authz.status') },
      { key: 'metrics', label: 'allow / deny / nomatch' }, { key: 'enable', label: t('app.enable') },
      { key: 'actions', label: t('app.actions') }];
    async function toggle(row, on) {
      try { await api('PUT', `/authorization/sources/${row.type}`, { body: { ...row, enable: on } }); load(); }
      catch (e) { fail(e); load(); }
    }
    async function move(row, position) {
      try { await api('POST', `/authorization/sources/${row.type}/move`, { body: { position } }); load(); }
      catch (e) { fail(e); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      try { await api('DELETE', `/authorization/sources/${row.type}`); ok(t('app.deleted')); load(); } catch (e) { fail(e); }
    }
    async function saveSettings(edited) {
      try { settings.value = await api('PUT', '/authorization/settings', { body: edited }); ok(t('app.saved')); }
      catch (e) { fail(e); }
    }
    async function clearCache() {
      try { await api('DELETE', '/authorization/cache'); ok(t('authz.cacheCleared')); } catch (e) { fail(e); }
    }
    const metricsOf = (s) => (s ? `${s.metrics.allow} / ${s.metrics.deny} / ${s.metrics.nomatch}` : '');
    return { t, rows, status, settings, columns, toggle, move, remove, saveSettings, clearCache, metricsOf, NAMES };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.authorization') }}</h1>
      <span><button type="button" @click="clearCache">{{ t('authz.clearCache') }}</button>
      <router-link class="button primary" to="/authorization/create">{{ t('app.create') }}</router-link></span></header>
    <DataTable :columns="columns" :rows="rows" row-key="type" :label="t('authz.sources')">
      <template #cell-type="{row}"><router-link :to="'/authorization/detail/' + row.type">{{ NAMES[row.type] || row.type }}</router-link></template>
      <template #cell-status="{row}"><span :class="['status', status[row.type]?.status]">{{ status[row.type]?.status || '…' }}</span></template>
      <template #cell-metrics="{row}">{{ metricsOf(status[row.type]) }}</template>
      <template #cell-enable="{row}"><input type="checkbox" role="switch" :checked="row.enable !== false"
        :aria-label="t('app.enable') + ' ' + row.type" @change="toggle(row, $event.target.checked)"></template>
      <template #cell-actions="{row}">
        <button type="button" class="link" @click="move(row, 'front')" :aria-label="t('authn.moveTop') + ' ' + row.type">{{ t('authn.moveTop') }}</button>
        <button type="button" class="link" @click="move(row, 'rear')" :aria-label="t('authn.moveBottom') + ' ' + row.type">{{ t('authn.moveBottom') }}</button>
        <button type="button" class="link danger" @click="remove(row)" :aria-label="t('app.delete') + ' ' + row.type">{{ t('app.delete') }}</button></template>
    </DataTable>
    <h2>{{ t('authz.settings') }}</h2>
    <ConfigForm v-if="settings" :value="settings" :label="t('authz.settings')" @save="saveSettings"></ConfigForm></section>`,
});

export const AuthorizationCreate = defineComponent({
  components: { ConfigForm },
  setup() {
    const router = useRouter();
    const type = ref('built_in_database');
    const template = computed(() => TEMPLATES[type.value]);
    async function create(settings) {
      try {
        await api('POST', '/authorization/sources', { body: { type: type.value, enable: true, ...settings } });
        ok(t('app.created')); router.push('/authorization');
      } catch (e) { fail(e); }
    }
    return { t, type, template, create, NAMES };
  },
  template: `<section><h1>{{ t('authz.create') }}</h1>
    <fieldset><legend>{{ t('authz.type') }}</legend>
      <label v-for="(name, ty) in NAMES" :key="ty" class="inline"><input type="radio" v-model="type" :value="ty"> {{ name }}</label></fieldset>
    <ConfigForm :key="type" :value="template" :label="t('authz.settings')" :save-label="t('app.create')" @save="create"></ConfigForm></section>`,
});

// the built-in database's rules: one list per client id, per username, and one for all
const KINDS = { clients: 'clientid', users: 'username', all: null };
const RULES = '/authorization/sources/built_in_database/rules';

const RuleTable = defineComponent({
  components: { DataTable, Pager },
  props: { kind: String },
  setup(props) {
    const field = KINDS[props.kind];
    const filters = reactive({ [`like_${field}`]: '' });
    const paged = field ? usePaged(() => `${RULES}/${props.kind}`, () => ({ ...filters }), api) : null;
    const allRules = ref([]);
    const draft = reactive({ who: '', permission: 'allow', action: 'publish', topic: '' });
    const load = async (page) => {
      if (paged) return paged.load(page);
      try { allRules.value = (await api('GET', `${RULES}/all`)).rules; } catch (e) { fail(e); }
    };
    load(1);
    const rows = computed(() => {
      if (!paged) return allRules.value.map((r, i) => ({ ...r, _key: i, who: '*' }));
      return paged.state.rows.flatMap((e) => e.rules.map((r, i) => ({ ...r, who: e[field], _key: `${e[field]}#${i}` })));
    });
    async function add() {
      const rule = { permission: draft.permission, action: draft.action, topic: draft.topic };
      try {
        if (!field) await api('POST', `${RULES}/all`, { body: { rules: [...allRules.value, rule] } });
        else {
          let current = [];
          try { current = (await api('GET', `${RULES}/${props.kind}/${enc(draft.who)}`)).rules; } catch { /* new */ }
          if (current.length) await api('PUT', `${RULES}/${props.kind}/${enc(draft.who)}`, { body: { [field]: draft.who, rules: [...current, rule] } });
          else await api('POST', `${RULES}/${props.kind}`, { body: [{ [field]: draft.who, rules: [rule] }] });
        }
        ok(t('app.saved')); draft.topic = ''; load(1);
      } catch (e) { fail(e); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      try {
        if (!field) {
          const keep = allRules.value.filter((_, i) => i !== row._key);
          await api('POST', `${RULES}/all`, { body: { rules: keep } });
        } else {
          const current = (await api('GET', `${RULES}/${props.kind}/${enc(row.who)}`)).rules;
          const keep = current.filter((r) => !(r.topic === row.topic && r.action === row.action && r.permission === row.permission));
          if (keep.length) await api('PUT', `${RULES}/${props.kind}/${enc(row.who)}`, { body: { [field]: row.who, rules: keep } });
          else await api('DELETE', `${RULES}/${props.kind}/${enc(row.who)}`);
        }
        ok(t('app.deleted')); load(1);
      } catch (e) { fail(e); }
    }
    const columns = [{ key: 'who', label: field ? t(`authz.${props.kind}`) : t('authz.all') },
      { key: 'permission', label: t('authz.permission') }, { key: 'action', label: t('authz.action') },
      { key: 'topic', label: t('authz.topic') }, { key: 'actions', label: t('app.actions') }];
    return { t, field, filters, paged, rows, draft, add, remove, load, columns };
  },
  template: `<div>
    <form class="toolbar" @submit.prevent="add" :aria-label="t('authz.addRule')">
      <input v-if="field" v-model="draft.who" required :placeholder="t('authz.' + kind)" :aria-label="t('authz.' + kind)">
      <select v-model="draft.permission" :aria-label="t('authz.permission')"><option>allow</option><option>deny</option></select>
      <select v-model="draft.action" :aria-label="t('authz.action')"><option>publish</option><option>subscribe</option><option>all</option></select>
      <input v-model="draft.topic" required :placeholder="t('authz.topic')" :aria-label="t('authz.topic')">
      <button type="submit" class="primary">{{ t('authz.addRule') }}</button></form>
    <DataTable :columns="columns" :rows="rows" row-key="_key" :label="t('authz.rules')">
      <template #cell-actions="{row}"><button type="button" class="link danger" @click="remove(row)"
        :aria-label="t('app.delete') + ' ' + row.who + ' ' + row.topic">{{ t('app.delete') }}</button></template></DataTable>
    <Pager v-if="paged" :meta="paged.state.meta" @page="load($event)"></Pager></div>`,
});

export const AuthorizationDetail = defineComponent({
  components: { ConfigForm, RuleTable },
  setup() {
    const route = useRoute();
    const type = route.params.type;
    const cfg = ref(null);
    const tab = ref(type === 'built_in_database' ? 'clients' : 'settings');
    const editable = computed(() => { if (!cfg.value) return null; const { type: _t, ...rest } = cfg.value; return rest; });
    api('GET', `/authorization/sources/${type}`).then((c) => { cfg.value = c; }).catch(fail);
    async function save(edited) {
      try { await api('PUT', `/authorization/sources/${type}`, { body: { type, ...edited } }); ok(t('app.saved')); }
      catch (e) { fail(e); }
    }
    return { t, type, cfg, tab, editable, save, NAMES };
  },
  template: `<section><h1>{{ NAMES[type] || type }}</h1>
    <nav class="tabs inline-tabs" aria-label="Tabs">
      <template v-if="type === 'built_in_database'">
        <button v-for="k in ['clients', 'users', 'all']" :key="k" type="button" :class="{active: tab === k}" @click="tab = k">{{ t('authz.' + k) }}</button></template>
      <button type="button" :class="{active: tab === 'settings'}" @click="tab = 'settings'">{{ t('authz.settings') }}</button></nav>
    <ConfigForm v-if="tab === 'settings' && editable" :value="editable" :label="t('authz.settings')" @save="save"></ConfigForm>
    <RuleTable v-else-if="tab !== 'settings'" :key="tab" :kind="tab"></RuleTable></section>`,
});
