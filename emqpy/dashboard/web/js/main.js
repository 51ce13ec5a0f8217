// The dashboard app: EMQX 5.8.1's hash routes (so EMQX bookmarks work), the login guard, the
// layout with its menu. Pages live in pages/*.js; the menu lists only pages emqpy has built.
import { createApp, defineComponent, computed } from 'vue';
import { createRouter, createWebHashHistory, useRoute, useRouter } from 'vue-router';
import { t } from './i18n.js';
import { api, session, endSession, setExpiredHandler } from './api.js';
import { NoticeHost, ConfirmHost, confirmBox, notify, focus } from './ui.js';
import Login from './pages/login.js';
import { Overview, Nodes, NodeDetail, Metrics } from './pages/overview.js';
import { Clients, ClientDetail } from './pages/clients.js';
import { Subscriptions, Topics } from './pages/subscriptions.js';
import Retained from './pages/retained.js';
import Banned from './pages/banned.js';
import Users from './pages/users.js';
import ApiKeys from './pages/apikeys.js';
import Listeners from './pages/listeners.js';
import { MqttSettings } from './pages/mqtt.js';
import { Rules, RuleEditor } from './pages/rules.js';
import { EntryList, EntryCreate, EntryDetail } from './pages/integration.js';
import { Alarms, FlappingDetect } from './pages/alarms.js';
import { Webhooks, WebhookEditor } from './pages/webhook.js';
import { LogTrace, LogTraceDetail, Logging } from './pages/logtrace.js';
import { Authentication, AuthenticationCreate, AuthenticationDetail } from './pages/authentication.js';
import { Authorization, AuthorizationCreate, AuthorizationDetail } from './pages/authorization.js';
import WebSocketClient from './pages/websocket.js';
import { DelayedMessages, DelayedSettings } from './pages/delayed.js';
import { TopicRewrite, AutoSubscribe } from './pages/advanced.js';
import { TopicMetrics, SlowSubs, SlowSubsSettings } from './pages/diagnose.js';
import Backup from './pages/backup.js';

const NotFound = defineComponent({
  setup: () => ({ t }),
  template: `<section><h1>{{ t('app.notFound') }}</h1>
    <router-link to="/dashboard/overview">{{ t('app.backHome') }}</router-link></section>`,
});

// [group label key, [[item label key, path], ...]] — EMQX's menu, built pages only: the CE
// menu, with the enterprise entries for features emqpy has where EMQX's enterprise menu puts
// them (its Management sub-group "Advanced MQTT" is a group of its own here).
export const MENU = [
  ['menu.monitoring', [['menu.overview', '/dashboard'], ['menu.clients', '/clients'],
    ['menu.subscriptions', '/subscriptions'], ['menu.retained', '/retained'], ['menu.delayed', '/delayed-pub'], ['menu.alarms', '/alarm']]],
  ['menu.accessControl', [['menu.authentication', '/authentication'],
    ['menu.authorization', '/authorization'], ['menu.banned', '/banned-clients'],
    ['menu.flapping', '/flapping-detect']]],
  ['menu.integration', [['menu.webhook', '/webhook'], ['menu.rules', '/rule'], ['menu.connector', '/connector']]],
  ['menu.management', [['menu.mqttSettings', '/mqtt'], ['menu.listeners', '/listener'], ['menu.log', '/log']]],
  ['menu.advancedMqtt', [['menu.topicRewrite', '/topic-rewrite'], ['menu.autoSub', '/auto-sub'],
    ['menu.delayed', '/delayed-pub-configuration']]],
  ['menu.diagnose', [['menu.websocket', '/websocket'], ['menu.topicMetrics', '/topic-metrics'],
    ['menu.slowSub', '/slow-sub'], ['menu.logTrace', '/log-trace']]],
  ['menu.system', [['menu.users', '/users'], ['menu.apiKey', '/api-key'], ['menu.backup', '/backup']]],
];

// pages shown with a tab bar above them (EMQX's meta.subMenu)
const TABS = {
  '/dashboard': [['overview.charts', '/dashboard/overview', 'menu.overview'],
                 ['', '/dashboard/nodes', 'overview.nodes'], ['', '/dashboard/metrics', 'overview.metrics']],
  '/rule': [['', '/rule/rules', 'menu.rules'], ['', '/rule/actions', 'integration.actions'],
            ['', '/rule/source', 'integration.sources']],
  '/alarm': [['', '/alarm/current-alarm', 'alarms.current'], ['', '/alarm/history-alarm', 'alarms.history']],
  '/mqtt': [['', '/mqtt/general', 'mqtt.general'], ['', '/mqtt/session', 'mqtt.session'],
            ['', '/mqtt/session-persistence', 'mqtt.session-persistence'], ['', '/mqtt/retainer', 'mqtt.retainer'], ['', '/mqtt/system-topic', 'mqtt.system-topic']],
  '/subscriptions': [['', '/subscriptions/subscription', 'menu.subscriptions'],
                     ['', '/subscriptions/topics', 'subs.topics']],
};

const routes = [
  { path: '/login', name: 'login', component: Login },
  { path: '/', redirect: '/dashboard' },
  { path: '/dashboard', redirect: '/dashboard/overview' },
  { path: '/dashboard/overview', name: 'overview', component: Overview, meta: { tabs: '/dashboard' } },
  { path: '/dashboard/nodes', name: 'nodes', component: Nodes, meta: { tabs: '/dashboard' } },
  { path: '/dashboard/nodes/:nodeName', name: 'nodeDetail', component: NodeDetail },
  { path: '/dashboard/metrics', name: 'metrics', component: Metrics, meta: { tabs: '/dashboard' } },
  { path: '/clients', name: 'clients', component: Clients },
  { path: '/clients/detail/:clientId', name: 'clients-detail', component: ClientDetail },
  { path: '/subscriptions', redirect: '/subscriptions/subscription' },
  { path: '/subscriptions/subscription', name: 'subscription', component: Subscriptions,
    meta: { tabs: '/subscriptions' } },
  { path: '/subscriptions/topics', name: 'topics', component: Topics, meta: { tabs: '/subscriptions' } },
  { path: '/retained', name: 'retained', component: Retained },
  { path: '/authentication', name: 'authentication', component: Authentication },
  { path: '/authentication/create', name: 'authentication-create', component: AuthenticationCreate },
  { path: '/authentication/detail/:id', name: 'authenticationDetail', component: AuthenticationDetail },
  { path: '/authorization', name: 'authorization', component: Authorization },
  { path: '/authorization/create', name: 'authorization-create', component: AuthorizationCreate },
  { path: '/authorization/detail/:type', name: 'authorizationDetail', component: AuthorizationDetail },
  { path: '/alarm', redirect: '/alarm/current-alarm' },
  { path: '/alarm/current-alarm', name: 'current-alarm', component: Alarms, meta: { tabs: '/alarm' } },
  { path: '/alarm/history-alarm', name: 'history-alarm', component: Alarms, meta: { tabs: '/alarm' } },
  { path: '/flapping-detect', name: 'flapping-detect', component: FlappingDetect },
  { path: '/banned-clients', name: 'banned-clients', component: Banned },
  { path: '/webhook', name: 'webhook', component: Webhooks },
  { path: '/webhook/create', name: 'webhook-create', component: WebhookEditor },
  { path: '/webhook/:name', name: 'webhook-detail', component: WebhookEditor },
  { path: '/rule', redirect: '/rule/rules' },
  { path: '/rule/rules', name: 'rule', component: Rules, meta: { tabs: '/rule' } },
  { path: '/rule/rules/create', name: 'rule-create', component: RuleEditor },
  { path: '/rule/rules/:id', name: 'rule-detail', component: RuleEditor },
  ...[['actions', '/rule/actions', 'action'], ['sources', '/rule/source', 'source'], ['connectors', '/connector', 'connector']]
    .flatMap(([kind, path, name]) => [
      { path, name: name === 'action' ? 'actions' : name, component: EntryList, props: { kind },
        meta: { tabs: kind === 'connectors' ? null : '/rule' } },
      { path: `${path}/create`, name: `${name}-create`, component: EntryCreate, props: { kind } },
      { path: `${path}/:id`, name: `${name}-detail`, component: EntryDetail, props: { kind } }]),
  { path: '/mqtt', redirect: '/mqtt/general' },
  { path: '/mqtt/general', name: 'mqtt-general', component: MqttSettings, meta: { tabs: '/mqtt' } },
  { path: '/mqtt/session', name: 'mqtt-session', component: MqttSettings, meta: { tabs: '/mqtt' } },
  { path: '/mqtt/session-persistence', name: 'mqtt-session-persistence', component: MqttSettings,
    meta: { tabs: '/mqtt' } },
  { path: '/mqtt/retainer', name: 'mqtt-retainer', component: MqttSettings, meta: { tabs: '/mqtt' } },
  { path: '/mqtt/system-topic', name: 'mqtt-system-topic', component: MqttSettings, meta: { tabs: '/mqtt' } },
  { path: '/listener', name: 'listener', component: Listeners },
  { path: '/websocket', name: 'websocket', component: WebSocketClient },
  { path: '/log-trace', name: 'log-trace', component: LogTrace },
  { path: '/log-trace/detail/:id', name: 'log-trace-detail', component: LogTraceDetail },
  { path: '/log', name: 'log', component: Logging },
  { path: '/users', name: 'users', component: Users },
  { path: '/api-key', name: 'api-key', component: ApiKeys },
  { path: '/delayed-pub', name: 'delayed-pub', component: DelayedMessages },
  { path: '/delayed-pub-configuration', name: 'delayed-pub-configuration', component: DelayedSettings },
  { path: '/topic-rewrite', name: 'topic-rewrite', component: TopicRewrite },
  { path: '/auto-sub', name: 'auto-sub', component: AutoSubscribe },
  { path: '/topic-metrics', name: 'topic-metrics', component: TopicMetrics },
  { path: '/slow-sub', name: 'slow-sub', component: SlowSubs },
  { path: '/slow-sub/config', name: 'slow-sub-config', component: SlowSubsSettings },
  { path: '/backup', name: 'backup', component: Backup },
  { path: '/:pathMatch(.*)*', name: 'not-found', component: NotFound },
];

const router = createRouter({ history: createWebHashHistory(), routes });

router.beforeEach((to) => {
  if (to.name !== 'login' && !session.token) return { name: 'login', query: { to: to.fullPath } };
  if (to.name === 'login' && session.token && !to.query.change) return to.query.to || '/dashboard';
  return true;
});

setExpiredHandler((err) => {
  const current = router.currentRoute.value;
  notify('error', `${t('login.expired')} (${err.code}: ${err.message})`, 10000);
  router.push({ name: 'login', query: { to: current.fullPath, reason: err.code } });
});

const Layout = defineComponent({
  setup() {
    const route = useRoute();
    const router = useRouter();
    const tabs = computed(() => TABS[route.meta.tabs] || null);
    const active = (path) => route.path === path || route.path.startsWith(path + '/');
    // the header names the menu group and item the page belongs to
    const crumb = computed(() => {
      for (const [group, items] of MENU) {
        const hit = items.find(([, path]) => active(path));
        if (hit) return `${t(group)} / ${t(hit[0])}`;
      }
      return '';
    });
    async function logout() {
      if (!(await confirmBox(t('login.confirmLogout'), { okLabel: t('menu.logout') }))) return;
      try { await api('POST', '/logout', { body: { username: session.username } }); } catch { /* gone anyway */ }
      endSession();
      router.push({ name: 'login' });
    }
    return { t, MENU, tabs, active, crumb, session, logout, route };
  },
  template: `<div class="layout">
    <nav class="leftbar" :aria-label="t('app.menu')">
      <div class="brand">emqpy</div>
      <div v-for="[group, items] in MENU" :key="group" class="group">
        <div class="group-title">{{ t(group) }}</div>
        <router-link v-for="[label, path] in items" :key="path" :to="path"
          :class="{active: active(path)}">{{ t(label) }}</router-link></div></nav>
    <div class="main">
      <header class="topbar">
        <span class="crumb">{{ crumb }}</span>
        <details class="usermenu"><summary :aria-label="t('app.user')">{{ session.username }}</summary>
          <router-link to="/users">{{ t('menu.users') }}</router-link>
          <button type="button" class="link" @click="logout">{{ t('menu.logout') }}</button></details>
      </header>
      <nav v-if="tabs" class="tabs" aria-label="Tabs">
        <router-link v-for="[, path, label] in tabs" :key="path" :to="path"
          :class="{active: route.path === path}">{{ t(label) }}</router-link></nav>
      <main class="content"><router-view :key="route.fullPath"></router-view></main>
    </div></div>`,
});

const Root = defineComponent({
  components: { Layout, NoticeHost, ConfirmHost },
  setup() { const route = useRoute(); return { route }; },
  template: `<router-view v-if="route.name === 'login'"></router-view>
    <Layout v-else></Layout><NoticeHost></NoticeHost><ConfirmHost></ConfirmHost>`,
});

const app = createApp(Root);
app.directive('focus', focus);
app.use(router);
app.mount('#app');
