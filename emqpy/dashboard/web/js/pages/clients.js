// Monitoring → Clients: search with the API's filters, paging, bulk kick; the detail page with
// connection and session info, subscriptions, queued and inflight messages, and kick out.
import { defineComponent, reactive, ref } from 'vue';
import { useRoute, useRouter } from 'vue-router';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, usePaged, usePolling, DataTable, Pager, formatDate, formatCell } from '../ui.js';

const enc = encodeURIComponent;
const PROTO = { 3: 'MQTT v3.1', 4: 'MQTT v3.1.1', 5: 'MQTT v5.0' };

export const Clients = defineComponent({
  components: { DataTable, Pager },
  setup() {
    const filters = reactive({ like_clientid: '', like_username: '', ip_address: '' });
    const selected = ref([]);
    const { state, load } = usePaged(() => '/clients', () => ({ ...filters }), api);
    usePolling(() => load(), 10000);
    const columns = [
      { key: 'clientid', label: t('clients.clientId') }, { key: 'username', label: t('clients.username') },
      { key: 'ip_address', label: t('clients.ip') }, { key: 'connected', label: t('clients.status') },
      { key: 'keepalive', label: t('clients.keepalive') }, { key: 'proto_ver', label: t('clients.protocol') },
      { key: 'connected_at', label: t('clients.connectedAt') }, { key: 'actions', label: t('app.actions') }];
    const search = () => load(1);
    const reset = () => { Object.assign(filters, { like_clientid: '', like_username: '', ip_address: '' }); load(1); };
    async function kick(id) {
      if (!(await confirmBox(t('clients.confirmKick')))) return;
      try { await api('DELETE', `/clients/${enc(id)}`); ok(t('clients.kicked')); load(); } catch (e) { fail(e); }
    }
    async function kickSelected() {
      if (!selected.value.length || !(await confirmBox(t('clients.confirmKickMany')))) return;
      try {
        await api('POST', '/clients/kickout/bulk', { body: selected.value });
        ok(t('clients.kicked')); selected.value = []; load();
      } catch (e) { fail(e); }
    }
    return { t, filters, state, load, columns, search, reset, kick, kickSelected, selected, enc, PROTO, formatDate };
  },
  template: `<section><h1>{{ t('menu.clients') }}</h1>
    <form class="toolbar" @submit.prevent="search" role="search">
      <input v-model="filters.like_clientid" :placeholder="t('clients.clientId')" :aria-label="t('clients.clientId')">
      <input v-model="filters.like_username" :placeholder="t('clients.username')" :aria-label="t('clients.username')">
      <input v-model="filters.ip_address" :placeholder="t('clients.ip')" :aria-label="t('clients.ip')">
      <button type="submit" class="primary">{{ t('app.search') }}</button>
      <button type="button" @click="reset">{{ t('app.reset') }}</button>
      <span class="spacer"></span>
      <button type="button" class="danger" :disabled="!selected.length" @click="kickSelected">{{ t('clients.kickOut') }}</button>
      <button type="button" @click="load()">{{ t('app.refresh') }}</button>
    </form>
    <DataTable :columns="columns" :rows="state.rows" row-key="clientid" selectable v-model:selected="selected"
      :loading="state.loading" :label="t('menu.clients')">
      <template #cell-clientid="{row}"><router-link :to="'/clients/detail/' + enc(row.clientid)">{{ row.clientid }}</router-link></template>
      <template #cell-connected="{row}"><span :class="['status', row.connected ? 'running' : 'stopped']">
        {{ row.connected ? t('clients.connected') : t('clients.disconnected') }}</span></template>
      <template #cell-proto_ver="{row}">{{ PROTO[row.proto_ver] || row.proto_ver }}</template>
      <template #cell-connected_at="{row}">{{ formatDate(row.connected_at) }}</template>
      <template #cell-actions="{row}"><button type="button" class="link danger" @click="kick(row.clientid)">{{ t('clients.kickOut') }}</button></template>
    </DataTable>
    <Pager :meta="state.meta" @page="load($event)" @limit="load(1, $event)"></Pager></section>`,
});

const CONN = [['clients.status', 'connected'], ['clients.node', 'node'], ['clients.clientId', 'clientid'],
  ['clients.username', 'username'], ['clients.protocol', 'proto_ver'], ['clients.listener', 'listener'],
  ['clients.ip', 'ip_address'], ['clients.keepalive', 'keepalive'], ['clients.connectedAt', 'connected_at']];
const SESSION = [['clients.cleanStart', 'clean_start'], ['clients.expiry', 'expiry_interval'],
  ['clients.subscriptions', 'subscriptions_cnt'], ['clients.mqueue', 'mqueue_len'], ['clients.inflight', 'inflight_cnt']];
const METRICS = ['recv_msg', 'send_msg', 'recv_oct', 'send_oct', 'recv_pkt', 'send_pkt', 'mqueue_dropped'];

export const ClientDetail = defineComponent({
  components: { DataTable },
  setup() {
    const route = useRoute();
    const router = useRouter();
    const id = route.params.clientId;
    const client = ref(null);
    const subs = ref([]);
    const mqueue = ref([]);
    const inflight = ref([]);
    usePolling(async () => {
      try {
        client.value = await api('GET', `/clients/${enc(id)}`);
        subs.value = await api('GET', `/clients/${enc(id)}/subscriptions`);
        mqueue.value = (await api('GET', `/clients/${enc(id)}/mqueue_messages`, { query: { limit: 100 } })).data || [];
        inflight.value = (await api('GET', `/clients/${enc(id)}/inflight_messages`, { query: { limit: 100 } })).data || [];
      } catch (e) { fail(e); }
    }, 5000);
    async function kick() {
      if (!(await confirmBox(t('clients.confirmKick')))) return;
      try { await api('DELETE', `/clients/${enc(id)}`); ok(t('clients.kicked')); router.push('/clients'); }
      catch (e) { fail(e); }
    }
    const show = (k, v) => k === 'proto_ver' ? (PROTO[v] || v)
      : k === 'connected' ? (v ? t('clients.connected') : t('clients.disconnected'))
      : k.endsWith('_at') ? formatDate(v) : formatCell(v);
    const subColumns = [{ key: 'topic', label: t('subs.topic') }, { key: 'qos', label: t('subs.qos') },
      { key: 'nl', label: t('subs.nl') }, { key: 'rap', label: t('subs.rap') }, { key: 'rh', label: t('subs.rh') }];
    const msgColumns = [{ key: 'msgid', label: 'ID' }, { key: 'topic', label: t('clients.topic') },
      { key: 'qos', label: t('clients.qos') }, { key: 'payload', label: t('clients.payload') },
      { key: 'publish_at', label: t('clients.publishedAt') }];
    return { t, id, client, subs, mqueue, inflight, kick, show, CONN, SESSION, METRICS, subColumns, msgColumns };
  },
  template: `<section><header class="page-head"><h1>{{ t('clients.detail') }}: {{ id }}</h1>
      <button type="button" class="danger" :title="t('clients.kickOut')" :aria-label="t('clients.kickOut')" @click="kick">⏏ {{ t('clients.kickOut') }}</button></header>
    <template v-if="client">
      <h2>{{ t('clients.connInfo') }}</h2>
      <dl class="facts"><template v-for="[label, k] in CONN" :key="k"><dt>{{ t(label) }}</dt><dd>{{ show(k, client[k]) }}</dd></template></dl>
      <h2>{{ t('clients.sessionInfo') }}</h2>
      <dl class="facts"><template v-for="[label, k] in SESSION" :key="k"><dt>{{ t(label) }}</dt><dd>{{ show(k, client[k]) }}</dd></template></dl>
      <h2>{{ t('clients.metrics') }}</h2>
      <dl class="facts"><template v-for="k in METRICS" :key="k"><dt>{{ k }}</dt><dd>{{ show(k, client[k]) }}</dd></template></dl>
    </template>
    <h2>{{ t('clients.subscriptions') }}</h2>
    <DataTable :columns="subColumns" :rows="subs" row-key="topic" :label="t('clients.subscriptions')"></DataTable>
    <h2>{{ t('clients.mqueue') }}</h2>
    <DataTable :columns="msgColumns" :rows="mqueue" row-key="msgid" :label="t('clients.mqueue')"></DataTable>
    <h2>{{ t('clients.inflight') }}</h2>
    <DataTable :columns="msgColumns" :rows="inflight" row-key="msgid" :label="t('clients.inflight')"></DataTable>
    </section>`,
});
