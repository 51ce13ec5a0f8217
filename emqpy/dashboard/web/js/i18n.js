// Every string the dashboard shows, in one table per language, so a translation is one more
// table. Keys are grouped by page; `t('clients.kickOut')`. EMQX's English wording where it has one.
import { reactive } from 'vue';

const en = {
  app: { title: 'emqpy Dashboard', notFound: 'Not Found', backHome: 'Back to overview',
         loading: 'Loading…', none: 'No data', refresh: 'Refresh', search: 'Search', reset: 'Reset',
         create: 'Create', cancel: 'Cancel', confirm: 'Confirm', delete: 'Delete', edit: 'Edit',
         save: 'Save', close: 'Close', copy: 'Copy', copied: 'Copied', actions: 'Actions',
         yes: 'Yes', no: 'No', never: 'Never', enable: 'Enable', prev: 'Previous page',
         next: 'Next page', page: 'Page', perPage: 'Per page', total: 'Total',
         confirmDelete: 'Confirm delete?', deleted: 'Deleted', saved: 'Saved',
         created: 'Created', menu: 'Main menu', user: 'User menu' },
  menu: { monitoring: 'Monitoring', overview: 'Cluster Overview', clients: 'Clients',
          subscriptions: 'Subscriptions', retained: 'Retained Messages',
          accessControl: 'Access Control', banned: 'Banned Clients',
          integration: 'Integration', rules: 'Rules', connector: 'Connector',
          management: 'Management', listeners: 'Listeners', mqttSettings: 'MQTT Settings',
          diagnose: 'Diagnose', websocket: 'WebSocket Client', clusterSettings: 'Cluster Settings',
          system: 'System', users: 'Users', apiKey: 'API Key', logout: 'Logout' },
  login: { username: 'Username', password: 'Password', login: 'Login',
           welcome: 'Log in to emqpy', badLogin: 'Incorrect username or password',
           expired: 'Your login has expired; log in again.',
           changeTitle: 'Change Password',
           changeHint: 'You are using the default password. Change it now to keep the broker safe.',
           newPassword: 'New password', confirmPassword: 'Confirm password', skip: 'Skip',
           mismatch: 'The two passwords do not match', changed: 'Password changed',
           confirmLogout: 'Confirm to logout' },
  overview: { allConnections: 'All Connections', liveConnections: 'Live Connections',
              topics: 'Topics', subscriptions: 'Subscriptions', retained: 'Retained',
              received: 'Incoming Messages', sent: 'Outgoing Messages', dropped: 'Dropped Messages',
              rate: 'msg/s', node: 'Node', uptime: 'Uptime', version: 'Version',
              status: 'Status', range: 'Time range', charts: 'Metrics history',
              h1: 'Last 1 hour', h6: 'Last 6 hours', h12: 'Last 12 hours', d1: 'Last 1 day',
              d7: 'Last 7 days', nodes: 'Nodes', metrics: 'Metrics' },
  nodes: { name: 'Node Name', status: 'Status', version: 'Version', uptime: 'Uptime',
           connections: 'Connections', memory: 'Memory', cpu: 'CPU load', role: 'Role',
           maxFds: 'Max FDs', edition: 'Edition' },
  clients: { clientId: 'Client ID', username: 'Username', ip: 'IP Address', node: 'Node',
             kickOut: 'Kick Out', connected: 'Connected', disconnected: 'Disconnected',
             status: 'Status', keepalive: 'Keepalive', protocol: 'Protocol',
             connectedAt: 'Connected At', listener: 'Listener', cleanStart: 'Clean Start',
             expiry: 'Session Expiry Interval', subscriptions: 'Subscriptions',
             mqueue: 'Message Queue', inflight: 'Inflight', connInfo: 'Connection Info',
             sessionInfo: 'Session Info', metrics: 'Metrics', detail: 'Client details',
             confirmKick: 'This operation will kick off the client, continue?',
             confirmKickMany: 'Kick out the selected clients?', select: 'Select',
             kicked: 'Kicked out', topic: 'Topic', qos: 'QoS', payload: 'Payload',
             publishedAt: 'Published At' },
  subs: { topic: 'Topic', qos: 'QoS', share: 'Shared group', nl: 'No Local',
          rap: 'Retain as Published', rh: 'Retain Handling', matchTopic: 'Match topic',
          topics: 'Topics' },
  retained: { topic: 'Topic', qos: 'QoS', clientId: 'Client ID', createdAt: 'Created At',
              showPayload: 'Show Payload', clearAll: 'Clear All', payload: 'Payload',
              confirmClear: 'Delete every retained message?' },
  banned: { value: 'Value', property: 'Property', reason: 'Reason', expireAt: 'Expire At',
            object: 'Banned Object', clientid: 'Client ID', username: 'Username',
            peerhost: 'IP Address', clientid_re: 'Client ID (regex)',
            username_re: 'Username (regex)', peerhost_net: 'IP range (CIDR)',
            by: 'By', at: 'Created At' },
  users: { username: 'Username', note: 'Note', password: 'Password', role: 'Role',
           changePassword: 'Change Password', oldPassword: 'Password',
           newPassword: 'New password', confirmPassword: 'Confirm password' },
  apiKey: { name: 'Name', expireAt: 'Expire At', enable: 'Is Enable', note: 'Note',
            createdOk: 'Created Successfully', apiKey: 'API Key', secretKey: 'Secret Key',
            secretOnce: 'The secret key is shown only now: copy it and keep it safe.',
            confirmDelete: 'Confirm delete API key?', enabled: 'Enable' },
  ws: { connection: 'Connection', connect: 'Connect', disconnect: 'Disconnect',
        connected: 'Connected', connecting: 'Connecting', disconnected: 'Disconnected',
        host: 'Host', port: 'Port', path: 'Path', version: 'MQTT Version',
        subscriptions: 'Subscriptions', subscribe: 'Subscribe', unsubscribe: 'Unsubscribe',
        subTopic: 'Subscription topic', subQos: 'Subscription QoS', publish: 'Publish',
        pubTopic: 'Publish topic', pubQos: 'Publish QoS', topic: 'Topic', payload: 'Payload',
        qos: 'QoS', retain: 'Retain', time: 'Time', received: 'Received', published: 'Published' },
  listeners: { name: 'Name', type: 'Type', bind: 'Listen Address', enable: 'Enable',
               status: 'Status', connections: 'Connections', maxConnections: 'Max Connections',
               acceptors: 'Acceptors', start: 'Start', stop: 'Stop', restart: 'Restart',
               running: 'Running', stopped: 'Stopped', add: 'Add Listener',
               confirmStop: 'Stop this listener? Its clients are disconnected.',
               confirmDelete: 'Delete this listener?', path: 'WebSocket path',
               certfile: 'TLS certificate file', keyfile: 'TLS key file', cacertfile: 'CA file' },
};

const tables = { en };
export const locale = reactive({ lang: localStorage.getItem('emqpy.lang') || 'en' });

export function t(key) {
  let node = tables[locale.lang] || en;
  for (const part of key.split('.')) node = node?.[part];
  if (typeof node === 'string') return node;
  let fallback = en;
  for (const part of key.split('.')) fallback = fallback?.[part];
  return typeof fallback === 'string' ? fallback : key;
}
