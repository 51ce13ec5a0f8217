// Access Control → Banned Clients: every kind of ban EMQX has, create with expiry, delete.
import { defineComponent, reactive, ref } from 'vue';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, confirmBox, usePaged, DataTable, Pager, Dialog, formatDate } from '../ui.js';

const KINDS = ['clientid', 'username', 'peerhost', 'clientid_re', 'username_re', 'peerhost_net'];

export default defineComponent({
  components: { DataTable, Pager, Dialog },
  setup() {
    const { state, load } = usePaged(() => '/banned', () => ({}), api);
    load(1);
    const creating = ref(false);
    const form = reactive({ as: 'clientid', who: '', until: '', reason: '' });
    const columns = [{ key: 'who', label: t('banned.value') }, { key: 'as', label: t('banned.property') },
      { key: 'reason', label: t('banned.reason') }, { key: 'until', label: t('banned.expireAt') },
      { key: 'by', label: t('banned.by') }, { key: 'actions', label: t('app.actions') }];
    async function create() {
      const body = { as: form.as, who: form.who, reason: form.reason };
      if (form.until) body.until = new Date(form.until).toISOString();
      try {
        await api('POST', '/banned', { body });
        ok(t('app.created')); creating.value = false;
        Object.assign(form, { as: 'clientid', who: '', until: '', reason: '' });
        load(1);
      } catch (e) { fail(e); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      try { await api('DELETE', `/banned/${row.as}/${encodeURIComponent(row.who)}`); ok(t('app.deleted')); load(); }
      catch (e) { fail(e); }
    }
    return { t, state, load, columns, creating, form, create, remove, KINDS, formatDate };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.banned') }}</h1>
      <button type="button" class="primary" @click="creating = true">{{ t('app.create') }}</button></header>
    <DataTable :columns="columns" :rows="state.rows.map(r => ({...r, _key: r.as + ':' + r.who}))" row-key="_key"
      :loading="state.loading" :label="t('menu.banned')">
      <template #cell-as="{row}">{{ t('banned.' + row.as) }}</template>
      <template #cell-until="{row}">{{ formatDate(row.until) }}</template>
      <template #cell-actions="{row}"><button type="button" class="link danger" @click="remove(row)">{{ t('app.delete') }}</button></template>
    </DataTable>
    <Pager :meta="state.meta" @page="load($event)" @limit="load(1, $event)"></Pager>
    <Dialog :open="creating" :title="t('app.create')" @close="creating = false">
      <form class="form" @submit.prevent="create">
        <label>{{ t('banned.object') }}
          <span class="joined"><select v-model="form.as" :aria-label="t('banned.property')">
            <option v-for="k in KINDS" :key="k" :value="k">{{ t('banned.' + k) }}</option></select>
          <input v-model="form.who" required :aria-label="t('banned.object')"></span></label>
        <label>{{ t('banned.expireAt') }}<input v-model="form.until" type="datetime-local"></label>
        <label>{{ t('banned.reason') }}<input v-model="form.reason"></label>
        <div class="buttons"><button type="button" @click="creating = false">{{ t('app.cancel') }}</button>
          <button type="submit" class="primary">{{ t('app.create') }}</button></div></form></Dialog></section>`,
});
