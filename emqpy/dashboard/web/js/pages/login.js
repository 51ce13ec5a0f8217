// #/login: log in with a dashboard user; the default password `public` of admin/root/
// administrator is followed by EMQX's "Change Password" form (which may be skipped).
import { defineComponent, reactive } from 'vue';
import { useRoute, useRouter } from 'vue-router';
import { t } from '../i18n.js';
import { api, startSession } from '../api.js';
import { fail, ok } from '../ui.js';

const DEFAULT_USERS = ['admin', 'root', 'administrator'];

export default defineComponent({
  setup() {
    const route = useRoute();
    const router = useRouter();
    const form = reactive({ username: '', password: '', busy: false, error: '',
                            changing: false, newPwd: '', confirmPwd: '' });
    const reason = route.query.reason ? t('login.expired') : '';
    const next = () => router.replace(route.query.to || '/dashboard');

    async function login() {
      form.busy = true; form.error = '';
      try {
        const answer = await api('POST', '/login',
          { body: { username: form.username, password: form.password } });
        startSession(form.username, answer);
        if (DEFAULT_USERS.includes(form.username) && form.password === 'public') form.changing = true;
        else next();
      } catch (e) {
        form.error = e.status === 401 ? `${t('login.badLogin')} (${e.code})` : `${e.code}: ${e.message}`;
      } finally { form.busy = false; }
    }

    async function change() {
      if (form.newPwd !== form.confirmPwd) { form.error = t('login.mismatch'); return; }
      try {
        await api('POST', `/users/${encodeURIComponent(form.username)}/change_pwd`,
          { body: { old_pwd: form.password, new_pwd: form.newPwd } });
        ok(t('login.changed'));
        next();
      } catch (e) { fail(e); form.error = `${e.code}: ${e.message}`; }
    }
    return { t, form, login, change, next, reason };
  },
  template: `<div class="login-page"><div class="login-box">
    <h1>{{ t('app.title') }}</h1>
    <p v-if="reason && !form.changing" class="warn" role="alert">{{ reason }}</p>
    <form v-if="!form.changing" @submit.prevent="login" aria-label="Login">
      <input v-model="form.username" :placeholder="t('login.username')" :aria-label="t('login.username')"
        autocomplete="username" required v-focus>
      <input v-model="form.password" type="password" :placeholder="t('login.password')"
        :aria-label="t('login.password')" autocomplete="current-password" required>
      <p v-if="form.error" class="error" role="alert">{{ form.error }}</p>
      <button type="submit" class="primary" :disabled="form.busy">{{ t('login.login') }}</button>
    </form>
    <form v-else @submit.prevent="change" :aria-label="t('login.changeTitle')">
      <h2>{{ t('login.changeTitle') }}</h2>
      <p class="warn">{{ t('login.changeHint') }}</p>
      <input v-model="form.newPwd" type="password" :placeholder="t('login.newPassword')"
        :aria-label="t('login.newPassword')" autocomplete="new-password" required v-focus>
      <input v-model="form.confirmPwd" type="password" :placeholder="t('login.confirmPassword')"
        :aria-label="t('login.confirmPassword')" autocomplete="new-password" required>
      <p v-if="form.error" class="error" role="alert">{{ form.error }}</p>
      <div class="buttons"><button type="button" class="link" @click="next">{{ t('login.skip') }}</button>
        <button type="submit" class="primary">{{ t('app.confirm') }}</button></div>
    </form></div></div>`,
});
