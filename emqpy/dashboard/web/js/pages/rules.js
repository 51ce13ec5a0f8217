// Integration → Rules: the list (search, enable switch, metrics, delete), and one editor for
// create and edit: SQL, description, actions (republish, console, or a data-integration action),
// and "Test SQL" against a sample event without saving.
import { defineComponent, reactive, ref, computed } from 'vue';
import { useRoute, useRouter } from 'vue-router';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, usePaged, usePolling, DataTable, Pager, formatDate, formatCell } from '../ui.js';

const enc = encodeURIComponent;

export const Rules = defineComponent({
  components: { DataTable, Pager },
  setup() {
    const filters = reactive({ like_id: '', like_from: '' });
    const { state, load } = usePaged(() => '/rules', () => ({ ...filters }), api);
    usePolling(() => load(), 10000);
    const columns = [{ key: 'id', label: t('rules.id') }, { key: 'from', label: t('rules.from') },
      { key: 'description', label: t('rules.description') }, { key: 'enable', label: t('rules.enable') },
      { key: 'created_at', label: t('rules.createdAt') }, { key: 'actions', label: t('app.actions') }];
    async function toggle(row, on) {
      try { await api('PUT', `/rules/${enc(row.id)}`, { body: { enable: on } }); load(); } catch (e) { fail(e); load(); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      try { await api('DELETE', `/rules/${enc(row.id)}`); ok(t('app.deleted')); load(); } catch (e) { fail(e); }
    }
    return { t, filters, state, load, columns, toggle, remove, enc, formatDate };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.rules') }}</h1>
      <router-link class="button primary" to="/rule/rules/create">{{ t('app.create') }}</router-link></header>
    <form class="toolbar" role="search" @submit.prevent="load(1)">
      <input v-model="filters.like_id" :placeholder="t('rules.id')" :aria-label="t('rules.id')">
      <input v-model="filters.like_from" :placeholder="t('rules.from')" :aria-label="t('rules.from')">
      <button type="submit" class="primary">{{ t('app.search') }}</button></form>
    <DataTable :columns="columns" :rows="state.rows" row-key="id" :loading="state.loading" :label="t('menu.rules')">
      <template #cell-id="{row}"><router-link :to="'/rule/rules/' + enc(row.id)">{{ row.id }}</router-link></template>
      <template #cell-from="{row}">{{ (row.from || []).join(', ') }}</template>
      <template #cell-enable="{row}"><input type="checkbox" role="switch" :checked="row.enable"
        :aria-label="t('rules.enable') + ' ' + row.id" @change="toggle(row, $event.target.checked)"></template>
      <template #cell-created_at="{row}">{{ formatDate(row.created_at) }}</template>
      <template #cell-actions="{row}"><button type="button" class="link danger" @click="remove(row)"
        :aria-label="t('app.delete') + ' ' + row.id">{{ t('app.delete') }}</button></template>
    </DataTable>
    <Pager :meta="state.meta" @page="load($event)" @limit="load(1, $event)"></Pager></section>`,
});

const DEFAULT_SQL = 'SELECT\n  *\nFROM\n  "t/#"';
const blankAction = () => ({ kind: 'republish', topic: 'repub/${topic}', qos: '${qos}', retain: false,
                             payload: '${payload}', ref: '' });

function toForm(action) {
  if (typeof action === 'string') return { ...blankAction(), kind: 'integration', ref: action };
  if (action.function === 'console') return { ...blankAction(), kind: 'console' };
  const a = action.args || {};
  return { ...blankAction(), kind: 'republish', topic: a.topic ?? '', qos: a.qos ?? 0,
           retain: a.retain ?? false, payload: a.payload ?? '' };
}

function fromForm(a) {
  if (a.kind === 'integration') return a.ref;
  if (a.kind === 'console') return { function: 'console' };
  const qos = /^\d+$/.test(String(a.qos)) ? Number(a.qos) : a.qos;
  const retain = typeof a.retain === 'boolean' ? a.retain : a.retain;
  return { function: 'republish', args: { topic: a.topic, qos, retain, payload: a.payload } };
}

export const RuleEditor = defineComponent({
  setup() {
    const route = useRoute();
    const router = useRouter();
    const id = route.params.id;  // undefined on #/rule/rules/create
    const form = reactive({ id: '', sql: DEFAULT_SQL, description: '', enable: true, actions: [] });
    const integrations = ref([]);
    const metrics = ref(null);
    const test = reactive({ topic: 't/1', clientid: 'c_emqx', username: 'u_emqx', payload: '{"msg": "hello"}',
                            qos: 1, output: '', error: '' });
    api('GET', '/actions').then((all) => { integrations.value = all.map((a) => `${a.type}:${a.name}`); }).catch(() => {});
    if (id) {
      api('GET', `/rules/${enc(id)}`).then((r) => {
        Object.assign(form, { id: r.id, sql: r.sql, description: r.description || '', enable: r.enable,
                              actions: (r.actions || []).map(toForm) });
      }).catch(fail);
      usePolling(async () => {
        try { metrics.value = (await api('GET', `/rules/${enc(id)}/metrics`)).metrics; } catch { /* deleted */ }
      }, 5000);
    }
    async function save() {
      const body = { sql: form.sql, description: form.description, enable: form.enable,
                     actions: form.actions.map(fromForm) };
      try {
        if (id) await api('PUT', `/rules/${enc(id)}`, { body });
        else await api('POST', '/rules', { body: form.id ? { ...body, id: form.id } : body });
        ok(t('app.saved'));
        router.push('/rule/rules');
      } catch (e) { fail(e); }
    }
    async function runTest() {
      test.output = ''; test.error = '';
      const context = { event_type: 'message_publish', topic: test.topic, clientid: test.clientid,
                        username: test.username, payload: test.payload, qos: Number(test.qos) };
      try { test.output = JSON.stringify(await api('POST', '/rule_test', { body: { sql: form.sql, context } }), null, 2); }
      catch (e) { test.error = `${e.code}: ${e.message}`; }
    }
    const addAction = () => form.actions.push(blankAction());
    const title = computed(() => (id ? `${t('rules.rule')} ${id}` : t('rules.create')));
    return { t, id, form, save, runTest, test, addAction, integrations, metrics, title, formatCell };
  },
  template: `<section><h1>{{ title }}</h1>
    <form class="form wide" @submit.prevent="save" :aria-label="title">
      <label v-if="!id">{{ t('rules.id') }}<input v-model="form.id" :placeholder="t('rules.idHint')"></label>
      <label>SQL<textarea v-model="form.sql" rows="8" class="code" spellcheck="false"></textarea></label>
      <label>{{ t('rules.description') }}<input v-model="form.description"></label>
      <label class="inline"><input v-model="form.enable" type="checkbox"> {{ t('rules.enable') }}</label>
      <fieldset><legend>{{ t('rules.actions') }}</legend>
        <div v-for="(a, i) in form.actions" :key="i" class="action-box">
          <label>{{ t('rules.actionType') }} {{ i + 1 }}<select v-model="a.kind">
            <option value="republish">{{ t('rules.republish') }}</option>
            <option value="console">{{ t('rules.console') }}</option>
            <option value="integration" :disabled="!integrations.length">{{ t('rules.integration') }}</option></select></label>
          <template v-if="a.kind === 'republish'">
            <label>{{ t('rules.topic') }}<input v-model="a.topic" required></label>
            <label>QoS<input v-model="a.qos"></label>
            <label class="inline"><input v-model="a.retain" type="checkbox"> Retain</label>
            <label>{{ t('rules.payload') }}<input v-model="a.payload"></label></template>
          <label v-if="a.kind === 'integration'">{{ t('rules.integration') }}<select v-model="a.ref" required>
            <option v-for="r in integrations" :key="r" :value="r">{{ r }}</option></select></label>
          <button type="button" class="link danger" @click="form.actions.splice(i, 1)">{{ t('rules.removeAction') }} {{ i + 1 }}</button>
        </div>
        <button type="button" @click="addAction">{{ t('rules.addAction') }}</button></fieldset>
      <div class="buttons"><router-link to="/rule/rules" class="button">{{ t('app.cancel') }}</router-link>
        <button type="submit" class="primary">{{ id ? t('app.save') : t('app.create') }}</button></div>
    </form>
    <h2>{{ t('rules.test') }}</h2>
    <form class="grid-form" @submit.prevent="runTest" :aria-label="t('rules.test')">
      <label>{{ t('rules.topic') }}<input v-model="test.topic"></label>
      <label>{{ t('clients.clientId') }}<input v-model="test.clientid"></label>
      <label>{{ t('clients.username') }}<input v-model="test.username"></label>
      <label>QoS<input v-model.number="test.qos" type="number" min="0" max="2"></label>
      <label>{{ t('rules.payload') }}<input v-model="test.payload"></label>
      <div class="buttons"><button type="submit" class="primary">{{ t('rules.runTest') }}</button></div></form>
    <pre v-if="test.output" class="payload" :aria-label="t('rules.output')">{{ test.output }}</pre>
    <p v-if="test.error" class="error" role="alert">{{ test.error }}</p>
    <template v-if="metrics"><h2>{{ t('rules.metrics') }}</h2>
      <dl class="facts"><template v-for="(v, k) in metrics" :key="k"><dt>{{ k }}</dt><dd :data-metric="k">{{ formatCell(v) }}</dd></template></dl></template>
    </section>`,
});
