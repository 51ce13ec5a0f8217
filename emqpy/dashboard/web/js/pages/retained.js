// Monitoring → Retained Messages: search by topic filter, view a payload, delete one, clear all.
import { defineComponent, reactive, ref } from 'vue';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, usePaged, DataTable, Pager, Dialog, formatDate } from '../ui.js';

function decode(b64) {
  try {
    const bytes = Uint8Array.from(atob(b64 || ''), (c) => c.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch { return b64; }  // not UTF-8: show the base64 as the API gives it
}

export default defineComponent({
  components: { DataTable, Pager, Dialog },
  setup() {
    const filters = reactive({ topic: '' });
    const { state, load } = usePaged(() => '/mqtt/retainer/messages', () => ({ ...filters }), api);
    load(1);
    const shown = ref(null);
    const columns = [{ key: 'topic', label: t('retained.topic') }, { key: 'qos', label: t('retained.qos') },
      { key: 'from_clientid', label: t('retained.clientId') }, { key: 'publish_at', label: t('retained.createdAt') },
      { key: 'actions', label: t('app.actions') }];
    const path = (topic) => `/mqtt/retainer/message/${topic.split('/').map(encodeURIComponent).join('/')}`;
    async function show(row) {
      try { const m = await api('GET', path(row.topic)); shown.value = { topic: m.topic, payload: decode(m.payload) }; }
      catch (e) { fail(e); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      try { await api('DELETE', path(row.topic)); ok(t('app.deleted')); load(); } catch (e) { fail(e); }
    }
    async function clearAll() {
      if (!(await confirmBox(t('retained.confirmClear')))) return;
      try { await api('DELETE', '/mqtt/retainer/messages'); ok(t('app.deleted')); load(1); } catch (e) { fail(e); }
    }
    return { t, filters, state, load, columns, shown, show, remove, clearAll, formatDate };
  },
  template: `<section><h1>{{ t('menu.retained') }}</h1>
    <form class="toolbar" role="search" @submit.prevent="load(1)">
      <input v-model="filters.topic" :placeholder="t('retained.topic')" :aria-label="t('retained.topic')">
      <button type="submit" class="primary">{{ t('app.search') }}</button>
      <span class="spacer"></span>
      <button type="button" @click="load()">{{ t('app.refresh') }}</button>
      <button type="button" class="danger" @click="clearAll">{{ t('retained.clearAll') }}</button></form>
    <DataTable :columns="columns" :rows="state.rows" row-key="topic" :loading="state.loading" :label="t('menu.retained')">
      <template #cell-publish_at="{row}">{{ formatDate(row.publish_at) }}</template>
      <template #cell-actions="{row}">
        <button type="button" class="link" @click="show(row)">{{ t('retained.showPayload') }}</button>
        <button type="button" class="link danger" @click="remove(row)">{{ t('app.delete') }}</button></template>
    </DataTable>
    <Pager :meta="state.meta" @page="load($event)" @limit="load(1, $event)"></Pager>
    <Dialog :open="!!shown" :title="t('retained.payload')" @close="shown = null">
      <p v-if="shown"><code>{{ shown.topic }}</code></p>
      <pre v-if="shown" class="payload">{{ shown.payload }}</pre></Dialog></section>`,
});
