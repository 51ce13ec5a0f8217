// Monitoring → Delayed Publish: the messages held by `$delayed/<seconds>/<topic>` (paged, view
// one with its payload, delete one or every message of a topic); Advanced MQTT → Delayed
// Publish: the `delayed` settings (enable, max_delayed_messages).
import { defineComponent, ref } from 'vue';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, usePaged, DataTable, Pager, Dialog, ConfigForm, formatDate } from '../ui.js';

const enc = encodeURIComponent;

// the API gives the payload base64-encoded (or PAYLOAD_TOO_LARGE): shown as UTF-8 text
function decodePayload(b64) {
  if (!b64 || b64 === 'PAYLOAD_TOO_LARGE') return b64 || '';
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

export const DelayedMessages = defineComponent({
  components: { DataTable, Pager, Dialog },
  setup() {
    const { state, load } = usePaged(() => '/mqtt/delayed/messages', () => ({}), api);
    const enabled = ref(true);
    api('GET', '/mqtt/delayed').then((c) => { enabled.value = c.enable; }).catch(fail);
    load(1);
    const shown = ref(null);
    const topic = ref('');
    const columns = [{ key: 'topic', label: t('delayed.topic') }, { key: 'qos', label: t('delayed.qos') },
      { key: 'from_clientid', label: t('delayed.clientId') }, { key: 'delayed_interval', label: t('delayed.interval') },
      { key: 'delayed_remaining', label: t('delayed.remaining') }, { key: 'expected_at', label: t('delayed.expectedAt') },
      { key: 'actions', label: t('app.actions') }];
    const one = (row) => `/mqtt/delayed/messages/${enc(row.node)}/${enc(row.msgid)}`;
    async function view(row) {
      try {
        const msg = await api('GET', one(row));
        shown.value = { ...msg, text: decodePayload(msg.payload) };
      } catch (e) { fail(e); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('delayed.confirmDelete')))) return;
      try { await api('DELETE', one(row)); ok(t('app.deleted')); load(); } catch (e) { fail(e); }
    }
    async function removeTopic() {
      if (!topic.value) return;
      if (!(await confirmBox(`${t('delayed.confirmDeleteTopic')} ${topic.value}`))) return;
      try {
        await api('DELETE', `/mqtt/delayed/messages/${enc(topic.value)}`);
        ok(t('app.deleted')); topic.value = ''; load(1);
      } catch (e) { fail(e); }
    }
    return { t, state, load, enabled, columns, shown, view, remove, topic, removeTopic, formatDate };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.delayed') }}</h1>
      <router-link class="button" to="/delayed-pub-configuration">{{ t('delayed.settings') }}</router-link></header>
    <p v-if="!enabled" class="warn">{{ t('delayed.disabled') }}</p>
    <form class="toolbar" @submit.prevent="removeTopic">
      <input v-model="topic" :aria-label="t('delayed.byTopic')" :placeholder="t('delayed.byTopic')">
      <button type="submit" class="danger" :disabled="!topic">{{ t('delayed.deleteTopic') }}</button>
      <span class="spacer"></span>
      <button type="button" @click="load()">{{ t('app.refresh') }}</button></form>
    <DataTable :columns="columns" :rows="state.rows" row-key="msgid" :loading="state.loading" :label="t('menu.delayed')">
      <template #cell-expected_at="{row}">{{ formatDate(row.expected_at) }}</template>
      <template #cell-actions="{row}">
        <button type="button" class="link" @click="view(row)" :aria-label="t('delayed.view') + ' ' + row.topic">{{ t('delayed.view') }}</button>
        <button type="button" class="link danger" @click="remove(row)" :aria-label="t('app.delete') + ' ' + row.topic">{{ t('app.delete') }}</button></template>
    </DataTable>
    <Pager :meta="state.meta" @page="load($event)" @limit="load(1, $event)"></Pager>
    <Dialog :open="!!shown" :title="t('delayed.message')" @close="shown = null">
      <dl class="facts" v-if="shown">
        <dt>{{ t('delayed.topic') }}</dt><dd>{{ shown.topic }}</dd>
        <dt>{{ t('delayed.clientId') }}</dt><dd>{{ shown.from_clientid }}</dd>
        <dt>{{ t('delayed.publishAt') }}</dt><dd>{{ formatDate(shown.publish_at) }}</dd>
        <dt>{{ t('delayed.expectedAt') }}</dt><dd>{{ formatDate(shown.expected_at) }}</dd></dl>
      <pre class="payload" v-if="shown" :aria-label="t('delayed.payload')">{{ shown.text }}</pre></Dialog></section>`,
});

export const DelayedSettings = defineComponent({
  components: { ConfigForm },
  setup() {
    const value = ref(null);
    const load = async () => { try { value.value = await api('GET', '/mqtt/delayed'); } catch (e) { fail(e); } };
    load();
    async function save(edited) {
      try { value.value = await api('PUT', '/mqtt/delayed', { body: edited }); ok(t('app.saved')); }
      catch (e) { fail(e); }
    }
    return { t, value, save };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.delayed') }}</h1>
      <router-link class="button" to="/delayed-pub">{{ t('delayed.messages') }}</router-link></header>
    <ConfigForm v-if="value" :key="JSON.stringify(value)" :value="value" :label="t('menu.delayed')" @save="save"></ConfigForm></section>`,
});
