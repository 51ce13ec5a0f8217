// Access Control → Authentication: the chain (order, enable, status, delete), EMQX's
// three-step create wizard (mechanism, backend, settings), and an authenticator's detail with
// its Overview, Settings and, for the built-in database, Users (add, edit, delete, import).
import { defineComponent, reactive, ref, computed } from 'vue';
import { useRoute, useRouter } from 'vue-router';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, usePaged, usePolling, DataTable, Pager, Dialog, ConfigForm, formatCell } from '../ui.js';

const enc = encodeURIComponent;
const HASH = { name: 'sha256', salt_position: 'suffix' };
// backends emqpy has, per mechanism, with the settings a new authenticator starts from
const TEMPLATES = {
  password_based: {
    built_in_database: { user_id_type: 'username', password_hash_algorithm: HASH },
    http: { method: 'post', url: 'http://127.0.0.1:8080/auth', headers: { 'content-type': 'application/json' },
            body: { username: '${username}', password: '${password}' }, request_timeout: '5s',
            connect_timeout: '15s', pool_size: 8, enable_pipelining: 100, ssl: { enable: false } },
    redis: { redis_type: 'single', server: '127.0.0.1:6379', database: 0, password: '',
             cmd: 'HMGET mqtt_user:${username} password_hash salt', password_hash_algorithm: HASH },
    postgresql: { server: '127.0.0.1:5432', database: 'mqtt', username: 'postgres', password: '',
                  query: 'SELECT password_hash, salt FROM mqtt_user where username = ${username} LIMIT 1',
                  password_hash_algorithm: HASH },
  },
  jwt: { '': { use_jwks: false, algorithm: 'hmac-based', secret: 'emqxsecret', secret_base64_encoded: false,
                from: 'password', verify_claims: {}, acl_claim_name: 'acl', disconnect_after_expire: true } },
  scram: { built_in_database: { algorithm: 'sha256', iteration_count: 4096 } },
};
const MECHANISMS = [['password_based', 'authn.passwordBased'], ['jwt', 'JWT'], ['scram', 'SCRAM']];
const BACKENDS = { built_in_database: 'authn.builtin', http: 'HTTP Server', redis: 'Redis', postgresql: 'PostgreSQL', '': 'JWT' };
export const label = (k) => (k.includes('.') ? t(k) : k);

export const Authentication = defineComponent({
  components: { DataTable },
  setup() {
    const rows = ref([]);
    const status = reactive({});
    async function load() {
      try {
        rows.value = await api('GET', '/authentication');
        for (const r of rows.value) {
          api('GET', `/authentication/${enc(r.id)}/status`).then((s) => { status[r.id] = s; }).catch(() => {});
        }
      } catch (e) { fail(e); }
    }
    usePolling(load, 10000);
    const columns = [{ key: 'id', label: t('authn.id') }, { key: 'backend', label: t('authn.backend') },
      { key: 'status', label: t('authn.status') }, { key: 'metrics', label: t('authn.metrics') },
      { key: 'enable', label: t('app.enable') }, { key: 'actions', label: t('app.actions') }];
    async function toggle(row, on) {
      const { id, ...cfg } = row;
      try { await api('PUT', `/authentication/${enc(id)}`, { body: { ...cfg, enable: on } }); load(); }
      catch (e) { fail(e); load(); }
    }
    async function move(row, where) {
      try { await api('PUT', `/authentication/${enc(row.id)}/position/${where}`); load(); } catch (e) { fail(e); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      try { await api('DELETE', `/authentication/${enc(row.id)}`); ok(t('app.deleted')); load(); } catch (e) { fail(e); }
    }
    const backendOf = (row) => label(BACKENDS[row.backend || ''] || row.backend);
    return { t, rows, status, columns, toggle, move, remove, enc, backendOf };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.authentication') }}</h1>
      <router-link class="button primary" to="/authentication/create">{{ t('app.create') }}</router-link></header>
    <DataTable :columns="columns" :rows="rows" row-key="id" :label="t('menu.authentication')">
      <template #cell-id="{row}"><router-link :to="'/authentication/detail/' + enc(row.id)">{{ row.id }}</router-link></template>
      <template #cell-backend="{row}">{{ backendOf(row) }}</template>
      <template #cell-status="{row}"><span :class="['status', status[row.id]?.status]">{{ status[row.id]?.status || '…' }}</span></template>
      <template #cell-metrics="{row}">{{ status[row.id] ? status[row.id].metrics.success + ' / ' + status[row.id].metrics.failed : '' }}</template>
      <template #cell-enable="{row}"><input type="checkbox" role="switch" :checked="row.enable !== false"
        :aria-label="t('app.enable') + ' ' + row.id" @change="toggle(row, $event.target.checked)"></template>
      <template #cell-actions="{row}">
        <router-link v-if="row.backend === 'built_in_database' && row.mechanism === 'password_based'" class="link"
          :to="'/authentication/detail/' + enc(row.id) + '?tab=users'" :aria-label="t('authn.users') + ' ' + row.id">{{ t('authn.users') }}</router-link>
        <button type="button" class="link" @click="move(row, 'front')" :aria-label="t('authn.moveTop') + ' ' + row.id">{{ t('authn.moveTop') }}</button>
        <button type="button" class="link" @click="move(row, 'rear')" :aria-label="t('authn.moveBottom') + ' ' + row.id">{{ t('authn.moveBottom') }}</button>
        <button type="button" class="link danger" @click="remove(row)" :aria-label="t('app.delete') + ' ' + row.id">{{ t('app.delete') }}</button></template>
    </DataTable></section>`,
});

export const AuthenticationCreate = defineComponent({
  components: { ConfigForm },
  setup() {
    const router = useRouter();
    const step = ref(1);
    const choice = reactive({ mechanism: 'password_based', backend: 'built_in_database' });
    const backends = computed(() => Object.keys(TEMPLATES[choice.mechanism]));
    const template = computed(() => TEMPLATES[choice.mechanism][choice.backend] || {});
    function next() {
      if (step.value === 1 && !backends.value.includes(choice.backend)) choice.backend = backends.value[0];
      step.value += 1;
    }
    async function create(settings) {
      const body = { mechanism: choice.mechanism, ...settings };
      if (choice.backend) body.backend = choice.backend;
      try { await api('POST', '/authentication', { body }); ok(t('app.created')); router.push('/authentication'); }
      catch (e) { fail(e); }
    }
    return { t, step, choice, backends, template, next, create, MECHANISMS, BACKENDS, label };
  },
  template: `<section><h1>{{ t('authn.create') }}</h1>
    <ol class="steps"><li :class="{active: step === 1}">{{ t('authn.mechanism') }}</li>
      <li :class="{active: step === 2}">{{ t('authn.backend') }}</li><li :class="{active: step === 3}">{{ t('authn.settings') }}</li></ol>
    <fieldset v-if="step === 1"><legend>{{ t('authn.mechanism') }}</legend>
      <label v-for="[m, name] in MECHANISMS" :key="m" class="inline"><input type="radio" v-model="choice.mechanism" :value="m"> {{ label(name) }}</label>
      <div class="buttons"><button type="button" class="primary" @click="next">{{ t('authn.next') }}</button></div></fieldset>
    <fieldset v-if="step === 2"><legend>{{ t('authn.backend') }}</legend>
      <label v-for="b in backends" :key="b" class="inline"><input type="radio" v-model="choice.backend" :value="b"> {{ label(BACKENDS[b]) }}</label>
      <div class="buttons"><button type="button" @click="step = 1">{{ t('authn.back') }}</button>
        <button type="button" class="primary" @click="next">{{ t('authn.next') }}</button></div></fieldset>
    <template v-if="step === 3">
      <ConfigForm :value="template" :label="t('authn.settings')" :save-label="t('app.create')" @save="create"></ConfigForm>
      <div class="buttons"><button type="button" @click="step = 2">{{ t('authn.back') }}</button></div></template>
    </section>`,
});

export const AuthenticationDetail = defineComponent({
  components: { ConfigForm, DataTable, Pager, Dialog },
  setup() {
    const route = useRoute();
    const id = route.params.id;
    const tab = ref(route.query.tab || 'overview');
    const cfg = ref(null);
    const status = ref(null);
    const editable = computed(() => {
      if (!cfg.value) return null;
      const { id: _id, mechanism, backend, ...rest } = cfg.value;
      return rest;
    });
    const hasUsers = computed(() => cfg.value && cfg.value.backend === 'built_in_database');
    api('GET', `/authentication/${enc(id)}`).then((c) => { cfg.value = c; }).catch(fail);
    usePolling(async () => { try { status.value = await api('GET', `/authentication/${enc(id)}/status`); } catch { /* gone */ } }, 5000);
    async function saveSettings(edited) {
      const { mechanism, backend } = cfg.value;
      try {
        await api('PUT', `/authentication/${enc(id)}`, { body: { mechanism, ...(backend ? { backend } : {}), ...edited } });
        ok(t('app.saved')); cfg.value = await api('GET', `/authentication/${enc(id)}`);
      } catch (e) { fail(e); }
    }
    // users of the built-in database
    const filters = reactive({ like_user_id: '' });
    const { state, load } = usePaged(() => `/authentication/${enc(id)}/users`, () => ({ ...filters }), api);
    const userDialog = ref(null);  // null | 'add' | user_id
    const user = reactive({ user_id: '', password: '', is_superuser: false });
    const importType = ref('plain');
    function openUser(row) {
      Object.assign(user, { user_id: row ? row.user_id : '', password: '', is_superuser: row ? row.is_superuser : false });
      userDialog.value = row ? row.user_id : 'add';
    }
    async function saveUser() {
      try {
        if (userDialog.value === 'add') await api('POST', `/authentication/${enc(id)}/users`, { body: { ...user } });
        else {
          const body = { is_superuser: user.is_superuser };
          if (user.password) body.password = user.password;
          await api('PUT', `/authentication/${enc(id)}/users/${enc(user.user_id)}`, { body });
        }
        ok(t('app.saved')); userDialog.value = null; load();
      } catch (e) { fail(e); }
    }
    async function removeUser(row) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      try { await api('DELETE', `/authentication/${enc(id)}/users/${enc(row.user_id)}`); ok(t('app.deleted')); load(); }
      catch (e) { fail(e); }
    }
    async function importFile(event) {
      const file = event.target.files[0];
      if (!file) return;
      const form = new FormData();
      form.append('filename', file, file.name);
      try {
        await api('POST', `/authentication/${enc(id)}/import_users`, { query: { type: importType.value }, body: form });
        ok(t('authn.imported')); load(1);
      } catch (e) { fail(e); }
      event.target.value = '';
    }
    const showTab = (name) => { tab.value = name; if (name === 'users') load(1); };
    if (tab.value === 'users') load(1);
    const userColumns = [{ key: 'user_id', label: t('authn.userId') }, { key: 'is_superuser', label: t('authn.superuser') },
      { key: 'actions', label: t('app.actions') }];
    return { t, id, tab, cfg, status, editable, hasUsers, saveSettings, filters, state, load, userDialog,
             user, openUser, saveUser, removeUser, importFile, importType, showTab, userColumns, formatCell };
  },
  template: `<section><h1>{{ id }}</h1>
    <nav class="tabs inline-tabs" aria-label="Tabs">
      <button type="button" :class="{active: tab === 'overview'}" @click="showTab('overview')">{{ t('authn.overview') }}</button>
      <button type="button" :class="{active: tab === 'settings'}" @click="showTab('settings')">{{ t('authn.settings') }}</button>
      <button v-if="hasUsers" type="button" :class="{active: tab === 'users'}" @click="showTab('users')">{{ t('authn.users') }}</button></nav>
    <template v-if="tab === 'overview' && status">
      <dl class="facts"><dt>{{ t('authn.status') }}</dt><dd>{{ status.status }}</dd>
        <template v-for="(v, k) in status.metrics" :key="k"><dt>{{ k }}</dt><dd :data-metric="k">{{ formatCell(v) }}</dd></template></dl></template>
    <ConfigForm v-if="tab === 'settings' && editable" :value="editable" :label="t('authn.settings')" @save="saveSettings"></ConfigForm>
    <template v-if="tab === 'users'">
      <form class="toolbar" role="search" @submit.prevent="load(1)">
        <input v-model="filters.like_user_id" :placeholder="t('authn.userId')" :aria-label="t('authn.userId')">
        <button type="submit" class="primary">{{ t('app.search') }}</button>
        <span class="spacer"></span>
        <button type="button" class="primary" :title="t('authn.add')" :aria-label="t('authn.add')" @click="openUser(null)">＋ {{ t('authn.add') }}</button>
        <label>{{ t('authn.importType') }}<select v-model="importType"><option value="plain">plain</option><option value="hash">hash</option></select></label>
        <label class="button">{{ t('authn.import') }}<input type="file" accept=".csv,.json" class="hidden-file" @change="importFile" :aria-label="t('authn.import')"></label>
      </form>
      <DataTable :columns="userColumns" :rows="state.rows" row-key="user_id" :loading="state.loading" :label="t('authn.users')">
        <template #cell-actions="{row}">
          <button type="button" class="link" @click="openUser(row)" :aria-label="t('app.edit') + ' ' + row.user_id">{{ t('app.edit') }}</button>
          <button type="button" class="link danger" @click="removeUser(row)" :aria-label="t('app.delete') + ' ' + row.user_id">{{ t('app.delete') }}</button></template>
      </DataTable>
      <Pager :meta="state.meta" @page="load($event)" @limit="load(1, $event)"></Pager>
      <Dialog :open="!!userDialog" :title="userDialog === 'add' ? t('authn.add') : String(userDialog)" @close="userDialog = null">
        <form class="form" @submit.prevent="saveUser">
          <label>{{ t('clients.username') }}<input v-model="user.user_id" required :disabled="userDialog !== 'add'"></label>
          <label>{{ t('login.password') }}<input v-model="user.password" type="password" :required="userDialog === 'add'" autocomplete="new-password"></label>
          <label class="inline"><input v-model="user.is_superuser" type="checkbox"> {{ t('authn.isSuperuser') }}</label>
          <div class="buttons"><button type="button" @click="userDialog = null">{{ t('app.cancel') }}</button>
            <button type="submit" class="primary">{{ t('app.save') }}</button></div></form></Dialog>
    </template></section>`,
});
