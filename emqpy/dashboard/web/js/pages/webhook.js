// Integration → Webhook: EMQX's shortcut for "send these messages and events to this URL".
// A webhook NAME is, as EMQX's dashboard makes it, an http connector, an http action and a rule,
// each named NAME_WH_D (so webhooks made in EMQX's dashboard show here, and the other way round).
import { defineComponent, reactive, ref } from 'vue';
import { useRoute, useRouter } from 'vue-router';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, usePolling, DataTable } from '../ui.js';

const SUFFIX = '_WH_D';
const enc = encodeURIComponent;
const sqlOf = (triggers) => `SELECT\n  *\nFROM\n  ${triggers.map((x) => JSON.stringify(x)).join(',\n  ')}`;
const triggersOf = (rule) => (rule ? rule.from || [] : []);

async function loadWebhooks() {
  const [connectors, actions, rules] = await Promise.all([
    api('GET', '/connectors'), api('GET', '/actions'), api('GET', '/rules', { query: { limit: 1000 } })]);
  const byName = (list) => Object.fromEntries(list.map((x) => [x.name || x.id, x]));
  const conns = byName(connectors.filter((c) => c.type === 'http'));
  const rulesById = byName(rules.data || []);
  return actions.filter((a) => a.type === 'http' && a.name.endsWith(SUFFIX) && a.connector === a.name)
    .map((a) => ({ name: a.name.slice(0, -SUFFIX.length), action: a, connector: conns[a.name],
                   rule: rulesById[a.name] }));
}

export const Webhooks = defineComponent({
  components: { DataTable },
  setup() {
    const rows = ref([]);
    const load = async () => { try { rows.value = await loadWebhooks(); } catch (e) { fail(e); } };
    usePolling(load, 5000);
    const columns = [{ key: 'name', label: t('webhook.name') }, { key: 'trigger', label: t('webhook.trigger') },
      { key: 'url', label: t('webhook.url') }, { key: 'status', label: t('integration.status') },
      { key: 'enable', label: t('app.enable') }, { key: 'actions', label: t('app.actions') }];
    async function toggle(row, on) {
      const id = row.name + SUFFIX;
      try {
        await api('PUT', `/rules/${enc(id)}`, { body: { enable: on } });
        await api('PUT', `/actions/http:${enc(id)}/enable/${on}`);
        load();
      } catch (e) { fail(e); load(); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('webhook.confirmDelete')))) return;
      const id = row.name + SUFFIX;
      try {
        if (row.rule) await api('DELETE', `/rules/${enc(id)}`);
        await api('DELETE', `/actions/http:${enc(id)}`);
        if (row.connector) await api('DELETE', `/connectors/http:${enc(id)}`);
        ok(t('app.deleted')); load();
      } catch (e) { fail(e); load(); }
    }
    const enabled = (row) => row.action.enable !== false && (!row.rule || row.rule.enable);
    return { t, rows, columns, toggle, remove, enabled, triggersOf, enc };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.webhook') }}</h1>
      <router-link class="button primary" to="/webhook/create">{{ t('app.create') }}</router-link></header>
    <DataTable :columns="columns" :rows="rows" row-key="name" :label="t('menu.webhook')">
      <template #cell-name="{row}"><router-link :to="'/webhook/' + enc(row.name)">{{ row.name }}</router-link></template>
      <template #cell-trigger="{row}">{{ triggersOf(row.rule).join(', ') }}</template>
      <template #cell-url="{row}">{{ row.connector ? row.connector.url : '' }}{{ row.action.parameters?.path || '' }}</template>
      <template #cell-status="{row}"><span :class="['status', row.action.status]">{{ row.action.status }}</span></template>
      <template #cell-enable="{row}"><input type="checkbox" role="switch" :checked="enabled(row)"
        :aria-label="t('app.enable') + ' ' + row.name" @change="toggle(row, $event.target.checked)"></template>
      <template #cell-actions="{row}"><button type="button" class="link danger" @click="remove(row)"
        :aria-label="t('app.delete') + ' ' + row.name">{{ t('app.delete') }}</button></template>
    </DataTable></section>`,
});

export const WebhookEditor = defineComponent({
  setup() {
    const route = useRoute();
    const router = useRouter();
    const existing = route.params.name;  // undefined on #/webhook/create
    const form = reactive({ name: existing || '', triggers: 't/#', url: 'http://', method: 'post',
                            headers: '{"content-type": "application/json"}', body: '' });
    if (existing) {
      loadWebhooks().then((all) => {
        const w = all.find((x) => x.name === existing);
        if (!w) { fail({ code: 'NOT_FOUND', message: `No webhook ${existing}` }); return; }
        Object.assign(form, { triggers: triggersOf(w.rule).join(', '),
          url: (w.connector?.url || '') + (w.action.parameters?.path || ''),
          method: w.action.parameters?.method || 'post',
          headers: JSON.stringify(w.action.parameters?.headers || {}), body: w.action.parameters?.body || '' });
      }).catch(fail);
    }
    async function save() {
      let headers;
      try { headers = JSON.parse(form.headers || '{}'); }
      catch (e) { fail({ code: 'BAD_REQUEST', message: `headers: not valid JSON (${e.message})` }); return; }
      const id = form.name + SUFFIX;
      const connector = { url: form.url, headers, enable: true };
      const action = { connector: id, enable: true, parameters: { method: form.method, headers, body: form.body } };
      const triggers = form.triggers.split(',').map((x) => x.trim()).filter(Boolean);
      const rule = { sql: sqlOf(triggers), actions: [`http:${id}`], enable: true };
      try {
        if (existing) {
          await api('PUT', `/connectors/http:${enc(id)}`, { body: connector });
          await api('PUT', `/actions/http:${enc(id)}`, { body: action });
          await api('PUT', `/rules/${enc(id)}`, { body: rule });
        } else {
          await api('POST', '/connectors', { body: { type: 'http', name: id, ...connector } });
          await api('POST', '/actions', { body: { type: 'http', name: id, ...action } });
          await api('POST', '/rules', { body: { id, ...rule } });
        }
        ok(t('app.saved')); router.push('/webhook');
      } catch (e) { fail(e); }
    }
    return { t, form, save, existing };
  },
  template: `<section><h1>{{ existing ? existing : t('webhook.create') }}</h1>
    <form class="form wide" @submit.prevent="save" :aria-label="t('menu.webhook')">
      <label>{{ t('webhook.name') }}<input v-model="form.name" required :disabled="!!existing" pattern="[A-Za-z0-9][A-Za-z0-9_\\-]*"></label>
      <label>{{ t('webhook.trigger') }}<input v-model="form.triggers" required :placeholder="t('webhook.triggerHint')"></label>
      <label>{{ t('webhook.url') }}<input v-model="form.url" required type="url"></label>
      <label>{{ t('webhook.method') }}<select v-model="form.method"><option v-for="m in ['post','put','get','delete']" :key="m">{{ m }}</option></select></label>
      <label>{{ t('webhook.headers') }}<input v-model="form.headers"></label>
      <label>{{ t('webhook.body') }}<textarea v-model="form.body" rows="4" class="code" :placeholder="t('webhook.bodyHint')"></textarea></label>
      <div class="buttons"><router-link to="/webhook" class="button">{{ t('app.cancel') }}</router-link>
        <button type="submit" class="primary">{{ existing ? t('app.save') : t('app.create') }}</button></div>
    </form></section>`,
});
