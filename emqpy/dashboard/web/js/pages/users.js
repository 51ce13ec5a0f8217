// System → Users: create, edit the note, change a password, delete (not yourself, not admin).
import { defineComponent, reactive, ref } from 'vue';
import { t } from '../i18n.js';
import { api, session } from '../api.js';
import { fail, ok, confirmBox, DataTable, Dialog } from '../ui.js';

const enc = encodeURIComponent;

export default defineComponent({
  components: { DataTable, Dialog },
  setup() {
    const rows = ref([]);
    const dialog = ref(null);  // 'create' | 'edit' | 'password'
    const form = reactive({ username: '', description: '', password: '', old: '', next: '', confirm: '' });
    const load = async () => { try { rows.value = await api('GET', '/users'); } catch (e) { fail(e); } };
    load();
    const columns = [{ key: 'username', label: t('users.username') },
      { key: 'description', label: t('users.note') }, { key: 'actions', label: t('app.actions') }];
    const open = (kind, row = {}) => {
      Object.assign(form, { username: row.username || '', description: row.description || '',
                            password: '', old: '', next: '', confirm: '' });
      dialog.value = kind;
    };
    async function submit() {
      try {
        if (dialog.value === 'create') {
          await api('POST', '/users', { body: { username: form.username, password: form.password,
                                                description: form.description } });
        } else if (dialog.value === 'edit') {
          await api('PUT', `/users/${enc(form.username)}`, { body: { description: form.description } });
        } else {
          if (form.next !== form.confirm) { fail(t('login.mismatch')); return; }
          await api('POST', `/users/${enc(form.username)}/change_pwd`,
            { body: { old_pwd: form.old, new_pwd: form.next } });
        }
        ok(t('app.saved')); dialog.value = null; load();
      } catch (e) { fail(e); }
    }
    async function remove(row) {
      if (!(await confirmBox(t('app.confirmDelete')))) return;
      try { await api('DELETE', `/users/${enc(row.username)}`); ok(t('app.deleted')); load(); } catch (e) { fail(e); }
    }
    const deletable = (row) => row.username !== session.username && row.username !== 'admin';
    const title = () => ({ create: t('app.create'), edit: t('app.edit'), password: t('users.changePassword') })[dialog.value];
    return { t, rows, columns, dialog, form, open, submit, remove, deletable, title };
  },
  template: `<section><header class="page-head"><h1>{{ t('menu.users') }}</h1>
      <button type="button" class="primary" @click="open('create')">{{ t('app.create') }}</button></header>
    <DataTable :columns="columns" :rows="rows" row-key="username" :label="t('menu.users')">
      <template #cell-actions="{row}">
        <button type="button" class="link" @click="open('edit', row)">{{ t('app.edit') }}</button>
        <button type="button" class="link" @click="open('password', row)">{{ t('users.changePassword') }}</button>
        <button v-if="deletable(row)" type="button" class="link danger" @click="remove(row)">{{ t('app.delete') }}</button>
      </template></DataTable>
    <Dialog :open="!!dialog" :title="title()" @close="dialog = null">
      <form class="form" @submit.prevent="submit">
        <label>{{ t('users.username') }}<input v-model="form.username" :disabled="dialog !== 'create'" required></label>
        <label v-if="dialog !== 'password'">{{ t('users.note') }}<input v-model="form.description"></label>
        <label v-if="dialog === 'create'">{{ t('users.password') }}<input v-model="form.password" type="password" required autocomplete="new-password"></label>
        <template v-if="dialog === 'password'">
          <label>{{ t('users.oldPassword') }}<input v-model="form.old" type="password" required autocomplete="current-password"></label>
          <label>{{ t('users.newPassword') }}<input v-model="form.next" type="password" required autocomplete="new-password"></label>
          <label>{{ t('users.confirmPassword') }}<input v-model="form.confirm" type="password" required autocomplete="new-password"></label>
        </template>
        <div class="buttons"><button type="button" @click="dialog = null">{{ t('app.cancel') }}</button>
          <button type="submit" class="primary">{{ dialog === 'create' ? t('app.create') : t('app.confirm') }}</button></div>
      </form></Dialog></section>`,
});
