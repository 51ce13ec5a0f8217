// System → API Key: the seed guide's flow — create, see the secret once with a copy button,
// enable/disable, expiry, note, delete.
import { defineComponent, reactive, ref } from 'vue';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, copyText, DataTable, Dialog, formatDate } from '../ui.js';

const enc = encodeURIComponent;

export default defineComponent({
  components: { DataTable, Dialog },
  setup() {
    const rows = ref([]);
    const editing = ref(null);  // 'create' | 'edit'
    const created = ref(null);
    const form = reactive({ name: '', expired_at: '', enable: true, desc: '' });
    const load = async () => { try { rows.value = await api('GET', '/api_key'); } catch (e) { fail(e); } };
    load();
    const columns = [{ key: 'name', label: t('apiKey.name') }, { key: 'expired_at', label: t('apiKey.expireAt') },
      { key: 'desc', label: t('apiKey.note') }, { key: 'enable', label: t('apiKey.enabled') },
      { key: 'actions', label: t('app.actions') }];
    const open = (kind, row = {}) => {
      const expiry = row.expired_at && row.expired_at !== 'infinity' ? row.expired_at.slice(0, 16) : '';
      Object.assign(form, { name: row.name || '', expired_at: expiry, enable: row.enable ?? true, desc: row.desc || '' });
      editing.value = kind;
    };
    const expiry = () => (form.expired_at ? new Date(form.expired_at).toISOString() : 'infinity');
    async function submit() {
      try {
        if (editing.value === 'create') {
          created.value = await api('POST', '/api_key',
            { body: { name: form.name, expired_at: expiry(), enable: form.enable, desc: form.desc } });
        } else {
          await api('PUT', `/api_key/${enc(form.name)}`,
            { body: { expired_at: expiry(), enable: form.enable, desc: form.desc } });
          ok(t('app.saved'));
        }
        editing.value = null; load();
      } catch (e) { fail(e); }
    }
    async function toggle(row, on) {
      try { await api('PUT', `/api_key/${enc(row.name)}`, { body: { enable: on } }); load(); } catch (e) { fail(e); load(); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('apiKey.confirmDelete')))) return;
      try { await api('DELETE', `/api_key/${enc(row.name)}`); ok(t('app.deleted')); load(); } catch (e) { fail(e); }
    }
    return { t, rows, columns, editing, created, form, open, submit, toggle, remove, copyText, formatDate };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.apiKey') }}</h1>
      <button type="button" class="primary" @click="open('create')">{{ t('app.create') }}</button></header>
    <DataTable :columns="columns" :rows="rows" row-key="name" :label="t('menu.apiKey')">
      <template #cell-expired_at="{row}">{{ formatDate(row.expired_at) }}</template>
      <template #cell-enable="{row}"><label class="switch"><input type="checkbox" role="switch" :checked="row.enable"
        :aria-label="t('apiKey.enabled') + ' ' + row.name" @change="toggle(row, $event.target.checked)"></label></template>
      <template #cell-actions="{row}">
        <button type="button" class="link" @click="open('edit', row)">{{ t('app.edit') }}</button>
        <button type="button" class="link danger" @click="remove(row)">{{ t('app.delete') }}</button></template>
    </DataTable>
    <Dialog :open="!!editing" :title="editing === 'create' ? t('app.create') : t('app.edit')" @close="editing = null">
      <form class="form" @submit.prevent="submit">
        <label>{{ t('apiKey.name') }}<input v-model="form.name" :disabled="editing !== 'create'" required pattern="[a-zA-Z0-9_\\-]+"></label>
        <label>{{ t('apiKey.expireAt') }}<input v-model="form.expired_at" type="datetime-local"></label>
        <label class="inline"><input v-model="form.enable" type="checkbox"> {{ t('apiKey.enable') }}</label>
        <label>{{ t('apiKey.note') }}<input v-model="form.desc"></label>
        <div class="buttons"><button type="button" @click="editing = null">{{ t('app.cancel') }}</button>
          <button type="submit" class="primary">{{ t('app.confirm') }}</button></div></form></Dialog>
    <Dialog :open="!!created" :title="t('apiKey.createdOk')" @close="created = null">
      <div class="form" v-if="created">
        <p class="warn">{{ t('apiKey.secretOnce') }}</p>
        <label>{{ t('apiKey.apiKey') }}<span class="joined"><input :value="created.api_key" disabled :aria-label="t('apiKey.apiKey')">
          <button type="button" @click="copyText(created.api_key)">{{ t('app.copy') }}</button></span></label>
        <label>{{ t('apiKey.secretKey') }}<span class="joined"><input :value="created.api_secret" disabled :aria-label="t('apiKey.secretKey')">
          <button type="button" @click="copyText(created.api_secret)">{{ t('app.copy') }}</button></span></label>
        <div class="buttons"><button type="button" class="primary" @click="created = null">{{ t('app.close') }}</button></div>
      </div></Dialog></section>`,
});
