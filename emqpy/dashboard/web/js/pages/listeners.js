// Management → Listeners: every MQTT listener with its state and connections; start, stop,
// restart, create, edit (the common fields; the rest of its config is kept as it is), delete.
import { defineComponent, reactive, ref } from 'vue';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, usePolling, DataTable, Dialog } from '../ui.js';

const enc = encodeURIComponent;
const TYPES = ['tcp', 'ssl', 'ws', 'wss'];
const BLANK = { name: '', type: 'tcp', bind: '0.0.0.0:1884', max_connections: 'infinity',
                acceptors: 16, mountpoint: '', path: '/mqtt', certfile: '', keyfile: '', cacertfile: '' };

export default defineComponent({
  components: { DataTable, Dialog },
  setup() {
    const rows = ref([]);
    const editing = ref(null);  // null | 'create' | listener id
    const form = reactive({ ...BLANK });
    let current = {};
    const load = async () => { try { rows.value = await api('GET', '/listeners'); } catch (e) { fail(e); } };
    usePolling(load, 5000);
    const columns = [{ key: 'name', label: t('listeners.name') }, { key: 'type', label: t('listeners.type') },
      { key: 'bind', label: t('listeners.bind') }, { key: 'status', label: t('listeners.status') },
      { key: 'connections', label: t('listeners.connections') }, { key: 'actions', label: t('app.actions') }];

    async function open(row) {
      if (!row) { Object.assign(form, BLANK); current = {}; editing.value = 'create'; return; }
      try {
        current = await api('GET', `/listeners/${enc(row.id)}`);
        Object.assign(form, BLANK, {
          name: current.name, type: current.type, bind: String(current.bind),
          max_connections: current.max_connections ?? 'infinity', acceptors: current.acceptors ?? 16,
          mountpoint: current.mountpoint ?? '', path: current.websocket?.mqtt_path ?? '/mqtt',
          certfile: current.ssl_options?.certfile ?? '', keyfile: current.ssl_options?.keyfile ?? '',
          cacertfile: current.ssl_options?.cacertfile ?? '' });
        editing.value = row.id;
      } catch (e) { fail(e); }
    }
    function body() {
      const b = { ...current, name: form.name, type: form.type, bind: form.bind,
                  acceptors: Number(form.acceptors), mountpoint: form.mountpoint,
                  max_connections: form.max_connections === 'infinity' ? 'infinity' : Number(form.max_connections) };
      delete b.id; delete b.running; delete b.current_connections;
      if (form.type === 'ws' || form.type === 'wss') b.websocket = { ...(current.websocket || {}), mqtt_path: form.path };
      if (form.type === 'ssl' || form.type === 'wss') {
        const tls = { ...(current.ssl_options || {}) };
        for (const k of ['certfile', 'keyfile', 'cacertfile']) { if (form[k]) tls[k] = form[k]; }
        b.ssl_options = tls;
      }
      return b;
    }
    async function save() {
      try {
        if (editing.value === 'create') await api('POST', '/listeners', { body: body() });
        else await api('PUT', `/listeners/${enc(editing.value)}`, { body: body() });
        ok(t('app.saved')); editing.value = null; load();
      } catch (e) { fail(e); }
    }
    async function act(row, action) {
      if (action === 'stop' && !(await confirmBox(t('listeners.confirmStop')))) return;
      try { await api('POST', `/listeners/${enc(row.id)}/${action}`); ok(t('app.saved')); load(); } catch (e) { fail(e); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('listeners.confirmDelete')))) return;
      try { await api('DELETE', `/listeners/${enc(row.id)}`); ok(t('app.deleted')); load(); } catch (e) { fail(e); }
    }
    return { t, rows, columns, editing, form, open, save, act, remove, TYPES };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.listeners') }}</h1>
      <button type="button" class="primary" @click="open(null)">{{ t('listeners.add') }}</button></header>
    <DataTable :columns="columns" :rows="rows" row-key="id" :label="t('menu.listeners')">
      <template #cell-status="{row}"><span :class="['status', row.status.running ? 'running' : 'stopped']">
        {{ row.status.running ? t('listeners.running') : t('listeners.stopped') }}</span></template>
      <template #cell-connections="{row}">{{ row.status.current_connections }} / {{ row.status.max_connections }}</template>
      <template #cell-actions="{row}">
        <button type="button" class="link" @click="open(row)" :aria-label="t('app.edit') + ' ' + row.id">{{ t('app.edit') }}</button>
        <button v-if="row.status.running" type="button" class="link" @click="act(row, 'stop')" :aria-label="t('listeners.stop') + ' ' + row.id">{{ t('listeners.stop') }}</button>
        <button v-else type="button" class="link" @click="act(row, 'start')" :aria-label="t('listeners.start') + ' ' + row.id">{{ t('listeners.start') }}</button>
        <button type="button" class="link" @click="act(row, 'restart')" :aria-label="t('listeners.restart') + ' ' + row.id">{{ t('listeners.restart') }}</button>
        <button type="button" class="link danger" @click="remove(row)" :aria-label="t('app.delete') + ' ' + row.id">{{ t('app.delete') }}</button></template>
    </DataTable>
    <Dialog :open="!!editing" :title="editing === 'create' ? t('listeners.add') : String(editing)" @close="editing = null">
      <form class="form" @submit.prevent="save">
        <label>{{ t('listeners.name') }}<input v-model="form.name" required :disabled="editing !== 'create'" pattern="[A-Za-z0-9][A-Za-z0-9_\\-]*"></label>
        <label>{{ t('listeners.type') }}<select v-model="form.type" :disabled="editing !== 'create'">
          <option v-for="ty in TYPES" :key="ty" :value="ty">{{ ty }}</option></select></label>
        <label>{{ t('listeners.bind') }}<input v-model="form.bind" required></label>
        <label>{{ t('listeners.maxConnections') }}<input v-model="form.max_connections"></label>
        <label>{{ t('listeners.acceptors') }}<input v-model.number="form.acceptors" type="number" min="1"></label>
        <label>Mountpoint<input v-model="form.mountpoint"></label>
        <label v-if="form.type === 'ws' || form.type === 'wss'">{{ t('listeners.path') }}<input v-model="form.path" required></label>
        <template v-if="form.type === 'ssl' || form.type === 'wss'">
          <label>{{ t('listeners.certfile') }}<input v-model="form.certfile"></label>
          <label>{{ t('listeners.keyfile') }}<input v-model="form.keyfile"></label>
          <label>{{ t('listeners.cacertfile') }}<input v-model="form.cacertfile"></label></template>
        <div class="buttons"><button type="button" @click="editing = null">{{ t('app.cancel') }}</button>
          <button type="submit" class="primary">{{ t('app.save') }}</button></div></form></Dialog></section>`,
});
