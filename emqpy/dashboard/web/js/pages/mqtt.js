// Management → MQTT Settings: the `mqtt` zone settings split as EMQX's tabs (General, Session),
// Durable Sessions (`durable_sessions`, whose `enable` takes effect at the next start),
// the retainer's config and the $SYS topics, each saved with the API that owns it.
import { defineComponent, ref } from 'vue';
import { useRoute } from 'vue-router';
import { t } from '../i18n.js';
import { api } from '../api.js';
import { fail, ok, ConfigForm } from '../ui.js';

// the `mqtt` keys EMQX shows on its Session tab; the others are on General
const SESSION_KEYS = ['session_expiry_interval', 'message_expiry_interval', 'max_awaiting_rel',
  'await_rel_timeout', 'max_inflight', 'max_mqueue_len', 'mqueue_store_qos0', 'mqueue_priorities',
  'mqueue_default_priority', 'max_subscriptions', 'upgrade_qos', 'retry_interval'];

// tab name -> [GET/PUT path, how to pick the shown object, how to wrap the saved keys]
const TABS = {
  general: ['/configs/global_zone', (c) => c.mqtt, (c) => Object.keys(c.mqtt).filter((k) => !SESSION_KEYS.includes(k)),
            (edited) => ({ mqtt: edited })],
  session: ['/configs/global_zone', (c) => c.mqtt, (c) => SESSION_KEYS.filter((k) => k in c.mqtt),
            (edited) => ({ mqtt: edited })],
  // EMQX 5.8's global_zone carries `durable_sessions` too
  'session-persistence': ['/configs/global_zone', (c) => c.durable_sessions, null,
                          (edited) => ({ durable_sessions: edited })],
  retainer: ['/mqtt/retainer', (c) => c, null, (edited) => edited],
  'system-topic': ['/configs/sys_topics', (c) => c, null, (edited) => edited],
};

export const MqttSettings = defineComponent({
  components: { ConfigForm },
  setup() {
    const route = useRoute();
    const tab = route.path.split('/').pop();
    const [path, pick, keysOf, wrap] = TABS[tab];
    const value = ref(null);
    const keys = ref(null);
    async function load() {
      try {
        const conf = await api('GET', path);
        value.value = pick(conf);
        keys.value = keysOf ? keysOf(conf) : null;
      } catch (e) { fail(e); }
    }
    load();
    async function save(edited) {
      try { await api('PUT', path, { body: wrap(edited) }); ok(t('app.saved')); value.value = null; load(); }
      catch (e) { fail(e); }
    }
    return { t, tab, value, keys, save };
  },
  template: `<section><h1>{{ t('mqtt.' + tab) }}</h1>
    <p v-if="tab === 'session-persistence'">{{ t('mqtt.durableHint') }}</p>
    <ConfigForm v-if="value" :value="value" :keys="keys" :label="t('mqtt.' + tab)" @save="save"></ConfigForm></section>`,
});
