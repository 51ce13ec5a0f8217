// System → Backup & Restore: export a backup (all of it, or chosen table sets and config
// roots), the backup files (paged) with download, restore (import) and delete, and upload.
import { defineComponent, reactive, ref } from 'vue';
import { t } from '../i18n.js';
import { api, downloadFile } from '../api.js';
import { fail, ok, confirmBox, usePaged, DataTable, Pager, Dialog, formatDate, formatBytes } from '../ui.js';

const enc = encodeURIComponent;
// the table sets the export API knows (its ExportBody.table_sets)
const TABLE_SETS = ['api_keys', 'banned', 'builtin_authn', 'builtin_authz', 'builtin_retainer', 'dashboard_users'];

export default defineComponent({
  components: { DataTable, Pager, Dialog },
  setup() {
    const { state, load } = usePaged(() => '/data/files', () => ({}), api);
    load(1);
    const creating = ref(false);
    const busy = ref(false);
    const form = reactive({ tables: [...TABLE_SETS], roots: '' });
    const columns = [{ key: 'filename', label: t('backup.filename') }, { key: 'node', label: t('backup.node') },
      { key: 'created_at', label: t('backup.createdAt') }, { key: 'size', label: t('backup.size') },
      { key: 'actions', label: t('app.actions') }];
    const open = () => { Object.assign(form, { tables: [...TABLE_SETS], roots: '' }); creating.value = true; };
    async function create() {
      // every table set ticked and no root named: the API's "everything" (the keys left out)
      const body = {};
      if (form.tables.length !== TABLE_SETS.length) body.table_sets = [...form.tables];
      const roots = form.roots.split(',').map((s) => s.trim()).filter(Boolean);
      if (roots.length) body.root_keys = roots;
      busy.value = true;
      try {
        const info = await api('POST', '/data/export', { body });
        ok(`${t('backup.created')}: ${info.filename}`); creating.value = false; load(1);
      } catch (e) { fail(e); } finally { busy.value = false; }
    }
    const fileQuery = (row) => ({ node: row.node });
    async function download(row) {
      try { await downloadFile(`/data/files/${enc(row.filename)}`, row.filename, fileQuery(row)); } catch (e) { fail(e); }
    }
    async function restore(row) {
      if (!(await confirmBox(`${t('backup.confirmRestore')} ${row.filename}`, { okLabel: t('backup.restore') }))) return;
      busy.value = true;
      try { await api('POST', '/data/import', { body: { node: row.node, filename: row.filename } }); ok(t('backup.restored')); }
      catch (e) { fail(e); } finally { busy.value = false; }
    }
    async function remove(row) {
      if (!(await confirmBox(`${t('app.confirmDelete')} ${row.filename}`))) return;
      try { await api('DELETE', `/data/files/${enc(row.filename)}`, { query: fileQuery(row) }); ok(t('app.deleted')); load(); }
      catch (e) { fail(e); }
    }
    async function upload(event) {
      const file = event.target.files[0];
      if (!file) return;
      const body = new FormData();
      body.append('filename', file, file.name);
      try { await api('POST', '/data/files', { body }); ok(t('backup.uploaded')); load(1); } catch (e) { fail(e); }
      event.target.value = '';
    }
    return { t, state, load, columns, creating, busy, form, open, create, download, restore, remove, upload,
             TABLE_SETS, formatDate, formatBytes };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.backup') }}</h1>
      <span><label class="button">{{ t('backup.upload') }}<input type="file" accept=".tar.gz,.gz" class="hidden-file"
          @change="upload" :aria-label="t('backup.upload')"></label>
        <button type="button" class="primary" @click="open">{{ t('app.create') }}</button></span></header>
    <DataTable :columns="columns" :rows="state.rows" row-key="filename" :loading="state.loading || busy" :label="t('menu.backup')">
      <template #cell-created_at="{row}">{{ formatDate(row.created_at) }}</template>
      <template #cell-size="{row}">{{ formatBytes(row.size) }}</template>
      <template #cell-actions="{row}">
        <button type="button" class="link" @click="download(row)" :aria-label="t('backup.download') + ' ' + row.filename">{{ t('backup.download') }}</button>
        <button type="button" class="link" :disabled="busy" @click="restore(row)" :aria-label="t('backup.restore') + ' ' + row.filename">{{ t('backup.restore') }}</button>
        <button type="button" class="link danger" @click="remove(row)" :aria-label="t('app.delete') + ' ' + row.filename">{{ t('app.delete') }}</button></template>
    </DataTable>
    <Pager :meta="state.meta" @page="load($event)" @limit="load(1, $event)"></Pager>
    <Dialog :open="creating" :title="t('backup.create')" @close="creating = false">
      <form class="form" @submit.prevent="create">
        <fieldset><legend>{{ t('backup.tableSets') }}</legend>
          <label v-for="s in TABLE_SETS" :key="s" class="inline"><input type="checkbox" :value="s" v-model="form.tables"> {{ s }}</label></fieldset>
        <label>{{ t('backup.rootKeys') }}<input v-model="form.roots" :placeholder="t('backup.rootKeysHint')"></label>
        <div class="buttons"><button type="button" @click="creating = false">{{ t('app.cancel') }}</button>
          <button type="submit" class="primary" :disabled="busy">{{ t('app.create') }}</button></div></form></Dialog></section>`,
});
