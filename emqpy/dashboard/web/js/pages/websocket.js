// Diagnose → WebSocket Client: MQTT.js in the browser, connected to this broker's ws listener
// (found through GET /listeners), to subscribe and publish by hand.
import { defineComponent, reactive, ref, onUnmounted } from 'vue';
import mqtt from '../../vendor/mqtt.esm.js';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, DataTable, formatDate } from '../ui.js';

const MAX_SHOWN = 200;  // messages kept in each list

export default defineComponent({
  components: { DataTable },
  setup() {
    const conn = reactive({
      host: location.hostname || '127.0.0.1', port: 8083, path: '/mqtt',
      clientId: 'emqpy_' + Math.random().toString(16).slice(2, 10), username: '', password: '',
      keepalive: 60, clean: true, version: 5, tls: location.protocol === 'https:',
    });
    const state = ref('disconnected');
    const sub = reactive({ topic: 'testtopic/#', qos: 0 });
    const pub = reactive({ topic: 'testtopic/1', payload: '{ "msg": "hello" }', qos: 0, retain: false });
    const subs = ref([]);
    const received = ref([]);
    const published = ref([]);
    let client = null;

    api('GET', '/listeners').then((all) => {
      const ws = all.find((l) => l.type === (conn.tls ? 'wss' : 'ws') && l.enable !== false);
      if (ws) {
        conn.port = Number(String(ws.bind).split(':').pop());
        api('GET', `/listeners/${encodeURIComponent(ws.id)}`)
          .then((l) => { if (l.websocket?.mqtt_path) conn.path = l.websocket.mqtt_path; }).catch(() => {});
      }
    }).catch(fail);

    function connect() {
      const url = `${conn.tls ? 'wss' : 'ws'}://${conn.host}:${conn.port}${conn.path}`;
      state.value = 'connecting';
      client = mqtt.connect(url, {
        clientId: conn.clientId, username: conn.username || undefined,
        password: conn.password || undefined, keepalive: Number(conn.keepalive),
        clean: conn.clean, protocolVersion: Number(conn.version), reconnectPeriod: 0,
        connectTimeout: 10000,
      });
      client.on('connect', () => { state.value = 'connected'; });
      client.on('close', () => { state.value = 'disconnected'; subs.value = []; });
      client.on('error', (e) => { fail({ code: 'MQTT_ERROR', message: e.message }); });
      client.on('message', (topic, payload, packet) => {
        received.value.unshift({ n: Date.now() + Math.random(), topic, payload: payload.toString(),
                                 qos: packet.qos, retain: packet.retain, at: new Date().toISOString() });
        received.value.length = Math.min(received.value.length, MAX_SHOWN);
      });
    }
    function disconnect() { if (client) client.end(); }
    function subscribe() {
      const { topic, qos } = sub;
      client.subscribe(topic, { qos: Number(qos) }, (err, granted) => {
        if (err) { fail({ code: 'SUBSCRIBE_ERROR', message: err.message }); return; }
        const g = granted && granted[0];
        if (g && g.qos >= 128) { fail({ code: 'SUBSCRIBE_REFUSED', message: `reason code ${g.qos}` }); return; }
        subs.value = [...subs.value.filter((s) => s.topic !== topic), { topic, qos: g ? g.qos : qos }];
      });
    }
    function unsubscribe(topic) {
      client.unsubscribe(topic, () => { subs.value = subs.value.filter((s) => s.topic !== topic); });
    }
    function publish() {
      const { topic, payload, qos, retain } = pub;
      client.publish(topic, payload, { qos: Number(qos), retain }, (err) => {
        if (err) { fail({ code: 'PUBLISH_ERROR', message: err.message }); return; }
        published.value.unshift({ n: Date.now() + Math.random(), topic, payload, qos: Number(qos), retain,
                                  at: new Date().toISOString() });
        published.value.length = Math.min(published.value.length, MAX_SHOWN);
      });
    }
    onUnmounted(disconnect);
    const msgColumns = [{ key: 'topic', label: t('ws.topic') }, { key: 'payload', label: t('ws.payload') },
      { key: 'qos', label: t('ws.qos') }, { key: 'retain', label: t('ws.retain') }, { key: 'at', label: t('ws.time') }];
    const subColumns = [{ key: 'topic', label: t('ws.topic') }, { key: 'qos', label: t('ws.qos') },
      { key: 'actions', label: t('app.actions') }];
    return { t, conn, state, sub, pub, subs, received, published, connect, disconnect, subscribe,
             unsubscribe, publish, msgColumns, subColumns, formatDate };
  },
  template: `<section><h1>{{ t('menu.websocket') }}</h1>
    <h2>{{ t('ws.connection') }} <span :class="['status', state]" role="status">{{ t('ws.' + state) }}</span></h2>
    <form class="grid-form" @submit.prevent="connect">
      <label>{{ t('ws.host') }}<input v-model="conn.host" required></label>
      <label>{{ t('ws.port') }}<input v-model.number="conn.port" type="number" required></label>
      <label>{{ t('ws.path') }}<input v-model="conn.path" required></label>
      <label>{{ t('clients.clientId') }}<input v-model="conn.clientId"></label>
      <label>{{ t('clients.username') }}<input v-model="conn.username" autocomplete="off"></label>
      <label>{{ t('login.password') }}<input v-model="conn.password" type="password" autocomplete="off"></label>
      <label>{{ t('clients.keepalive') }}<input v-model.number="conn.keepalive" type="number"></label>
      <label>{{ t('ws.version') }}<select v-model.number="conn.version">
        <option :value="3">3.1</option><option :value="4">3.1.1</option><option :value="5">5.0</option></select></label>
      <label class="inline"><input v-model="conn.clean" type="checkbox"> {{ t('clients.cleanStart') }}</label>
      <label class="inline"><input v-model="conn.tls" type="checkbox"> TLS (wss)</label>
      <div class="buttons">
        <button type="submit" class="primary" :disabled="state !== 'disconnected'">{{ t('ws.connect') }}</button>
        <button type="button" :disabled="state === 'disconnected'" @click="disconnect">{{ t('ws.disconnect') }}</button></div>
    </form>
    <div class="two-cols">
      <div><h2>{{ t('ws.subscriptions') }}</h2>
        <form class="toolbar" @submit.prevent="subscribe">
          <input v-model="sub.topic" :aria-label="t('ws.subTopic')" :placeholder="t('ws.topic')" required>
          <select v-model.number="sub.qos" :aria-label="t('ws.subQos')"><option v-for="q in [0,1,2]" :key="q" :value="q">QoS {{ q }}</option></select>
          <button type="submit" class="primary" :disabled="state !== 'connected'">{{ t('ws.subscribe') }}</button></form>
        <DataTable :columns="subColumns" :rows="subs" row-key="topic" :label="t('ws.subscriptions')">
          <template #cell-actions="{row}"><button type="button" class="link danger" @click="unsubscribe(row.topic)">{{ t('ws.unsubscribe') }}</button></template>
        </DataTable></div>
      <div><h2>{{ t('ws.publish') }}</h2>
        <form class="form" @submit.prevent="publish">
          <input v-model="pub.topic" :aria-label="t('ws.pubTopic')" :placeholder="t('ws.topic')" required>
          <textarea v-model="pub.payload" :aria-label="t('ws.payload')" rows="3"></textarea>
          <span class="toolbar"><select v-model.number="pub.qos" :aria-label="t('ws.pubQos')"><option v-for="q in [0,1,2]" :key="q" :value="q">QoS {{ q }}</option></select>
            <label class="inline"><input v-model="pub.retain" type="checkbox"> {{ t('ws.retain') }}</label>
            <button type="submit" class="primary" :disabled="state !== 'connected'">{{ t('ws.publish') }}</button></span></form></div>
    </div>
    <h2>{{ t('ws.received') }}</h2>
    <DataTable :columns="msgColumns" :rows="received" row-key="n" :label="t('ws.received')">
      <template #cell-at="{row}">{{ formatDate(row.at) }}</template></DataTable>
    <h2>{{ t('ws.published') }}</h2>
    <DataTable :columns="msgColumns" :rows="published" row-key="n" :label="t('ws.published')">
      <template #cell-at="{row}">{{ formatDate(row.at) }}</template></DataTable>
    </section>`,
});
