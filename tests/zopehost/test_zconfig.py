"""zope.conf sections: every key of the settings tables, errors that name
the file, line and key."""
import io

import pytest
import ZConfig

import wsgi_taskqueue
from wsgi_taskqueue import config, settings
from wsgi_taskqueue.errors import ConfigurationError
from wsgi_taskqueue.zope import zconfig

#: Zope's WSGI schema, as far as product sections go.
SCHEMA = """
<schema>
  <abstracttype name="zope.product.base"/>
  <multisection type="zope.product.base" name="+" attribute="product_config"/>
</schema>
"""


@pytest.fixture(scope='module')
def schema():
    return ZConfig.loadSchemaFile(io.StringIO(SCHEMA))


@pytest.fixture
def zope_conf(tmp_path, schema):
    """Load a zope.conf text; return Zope's product_config for it."""
    def load(text):
        path = tmp_path / 'zope.conf'
        path.write_text('%import wsgi_taskqueue\n' + text)
        root, _ = ZConfig.loadConfig(schema, str(path))
        return {section.getSectionName(): section
                for section in root.product_config}
    return load


def plain_attributes(queue):
    """What a queue was configured with: its attributes of plain types."""
    plain = (str, int, float, bool, list, tuple, frozenset, type(None))
    return {key: value for key, value in vars(queue).items()
            if isinstance(value, plain)}


def test_component_xml_is_generated_from_the_settings_tables():
    with open(zconfig.COMPONENT_PATH) as component:
        assert component.read() == zconfig.component_xml()
    queue_keys = {*settings.QUEUE_SETTINGS,
                  *(k for t in settings.BACKEND_SETTINGS.values() for k in t)}
    assert set(zconfig.queue_keys.names()) == queue_keys
    assert set(zconfig.consumer_keys.names()) == set(settings.CONSUMER_SETTINGS)


def test_collective_taskqueues_sections_carry_over_named(zope_conf,
                                                         redis_url):
    product_config = zope_conf(f"""
        <taskqueue default>
          type redis
          url {redis_url}
          secret a-long-random-string
        </taskqueue>
        <taskqueue mailhost>
          type redis
          unix_socket_path /var/run/redis.sock
        </taskqueue>
        <taskqueue-server worker1>
          queue default
          concurrent_limit 2
        </taskqueue-server>
    """)
    configuration = zconfig.configuration(product_config)
    assert sorted(configuration.queues) == ['default', 'mailhost']
    assert configuration.queues['mailhost'].where == '/var/run/redis.sock/0'
    [consumer] = configuration.consumers
    assert consumer.settings['queue'] == 'default'
    assert consumer.settings['name'].startswith('worker1')
    assert consumer.settings['concurrent_limit'] == 2


def test_every_key_means_what_it_means_in_an_ini(zope_conf, tmp_path):
    """The same values through zope.conf and through an ini build the
    same settings."""
    queue_values = {'type': 'redis', 'max_task_size': '100000',
                    'secret': 'one two', 'credentials': 'user-id',
                    'copy_headers': 'X-Tenant X-Trace',
                    'http_host': 'www.example.com:8080', 'max_age': '60',
                    'status_ttl': '60', 'status_max': '10',
                    'dead_ttl': '3600', 'dead_max': '100',
                    'dead_credentials': 'true', 'name_ttl': '60',
                    'keep_result': 'true',
                    'result_ttl': '120', 'result_max_size': '1000',
                    'host': 'redis.example', 'port': '6380', 'db': '2',
                    'username': 'u', 'password': 'p',
                    'socket_timeout': '1.5', 'key_prefix': 'pfx',
                    'min_replicas': '1', 'max_connections': '7'}
    consumer_values = {'name': 'w', 'queue': 'q', 'concurrent_limit': '3',
                       'retry_max_count': '4', 'retry_delay': '0.5',
                       'retry_delay_max': '9', 'poll_interval': '2',
                       'prefetch': '2', 'lease_timeout': '20',
                       'max_deliveries': '7', 'staged_grace': '30',
                       'stop_timeout': '5'}
    # The keys of other topologies and queue types: the tests below.
    assert set(queue_values) | {'queue', 'url', 'unix_socket_path'} | set(
        TOPOLOGY_VALUES) | set(settings.SQL_SETTINGS) | set(
        settings.SYNC_SETTINGS) == set(zconfig.queue_keys.names())
    assert set(consumer_values) == set(settings.CONSUMER_SETTINGS)

    def lines(values):
        return '\n'.join(f'  {k} {v}' for k, v in values.items())

    from_zope = zconfig.configuration(zope_conf(
        f'<taskqueue q>\n{lines(queue_values)}\n</taskqueue>\n'
        f'<taskqueue-server w1>\n{lines(consumer_values)}\n'
        '</taskqueue-server>\n'))
    ini = tmp_path / 'app.ini'
    ini.write_text(
        '[taskqueue:q]\n' + ''.join(f'{k} = {v}\n'
                                    for k, v in queue_values.items())
        + '[taskqueue-server:w1]\n' + ''.join(
            f'{k} = {v}\n' for k, v in consumer_values.items()))
    from_ini = config.load(str(ini))
    [zope_consumer], [ini_consumer] = from_zope.consumers, from_ini.consumers
    assert zope_consumer.settings == ini_consumer.settings
    zope_queue, ini_queue = from_zope.queues['q'], from_ini.queues['q']
    assert plain_attributes(zope_queue) == plain_attributes(ini_queue)
    assert zope_queue.where == 'redis.example:6380/2'
    assert zope_queue.pool.connection_kwargs == ini_queue.pool.connection_kwargs
    assert zope_queue.codec.keys == ini_queue.codec.keys == [b"one", b"two"]


#: Keys that choose a Sentinel group or a Cluster, or shard the queue.
TOPOLOGY_VALUES = {'sentinels': '10.0.0.1:26379 10.0.0.2:26379',
                   'service_name': 'tq', 'sentinel_password': 's',
                   'shards': '2', 'cluster': 'false'}


def test_sentinel_cluster_and_shard_keys_mean_what_they_mean_in_an_ini(
        zope_conf, tmp_path):
    lines = '\n'.join(f'  {k} {v}' for k, v in TOPOLOGY_VALUES.items())
    from_zope = zconfig.configuration(zope_conf(
        f'<taskqueue q>\n  type redis\n{lines}\n</taskqueue>\n'))
    ini = tmp_path / 'app.ini'
    ini.write_text('[taskqueue:q]\ntype = redis\n' + ''.join(
        f'{k} = {v}\n' for k, v in TOPOLOGY_VALUES.items()))
    from_ini = config.load(str(ini))
    zope_queue, ini_queue = from_zope.queues['q'], from_ini.queues['q']
    assert len(zope_queue.shards) == len(ini_queue.shards) == 2
    assert zope_queue.where == ini_queue.where == (
        'redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/tq/0, 2 shards '
        '{q~0}..{q~1}')


def test_the_queue_key_renames_a_queue_and_the_name_key_a_consumer(
        zope_conf):
    configuration = zconfig.configuration(zope_conf("""
        <taskqueue first>
          queue mail
        </taskqueue>
        <taskqueue-server second>
          queue mail
          name mailer
        </taskqueue-server>
    """))
    assert list(configuration.queues) == ['mail']
    assert configuration.consumers[0].settings['name'] == 'mailer'


@pytest.mark.parametrize('section, line, key, message', [
    ('<taskqueue q>\n  port seventy\n</taskqueue>', 3, 'port',
     "port: bad value 'seventy'"),
    ('<taskqueue q>\n  type redis\n  colour blue\n</taskqueue>', 4,
     'colour', "unknown key 'colour'; known keys: "),
    ('<taskqueue-server w>\n  concurrent_limit 0\n</taskqueue-server>', 3,
     'concurrent_limit', 'must be at least 1'),
    ('<taskqueue-server w>\n  retry_delay -1\n</taskqueue-server>', 3,
     'retry_delay', 'must be greater than 0'),
    ('<taskqueue q>\n  type nosuch\n</taskqueue>', 3, 'type',
     "unknown queue type 'nosuch'; use local, sync, redis, sql"),
])
def test_a_bad_key_is_named_with_its_file_and_line(zope_conf, tmp_path,
                                                   section, line, key,
                                                   message):
    with pytest.raises(ZConfig.ConfigurationError) as raised:
        zope_conf(section)
    error = raised.value
    assert message in str(error) and key in str(error)
    assert (error.lineno, error.url) == (line, f'file://{tmp_path}/zope.conf')
    assert f'line {line}' in str(error) and error.url in str(error)


def test_unnamed_sections_are_refused_as_zope_refuses_them(zope_conf):
    with pytest.raises(ZConfig.ConfigurationError, match='unnamed'):
        zope_conf('<taskqueue>\n</taskqueue>')


@pytest.mark.parametrize('text, section, key, message', [
    ('<taskqueue q>\n  port 1\n</taskqueue>', '<taskqueue q>', 'port',
     'unknown key'),
    ('<taskqueue-server w>\n  queue q\n</taskqueue-server>',
     '<taskqueue-server w>', 'queue', "undefined queue 'q'"),
    ('<taskqueue a>\n</taskqueue>\n<taskqueue b>\n  queue a\n</taskqueue>',
     '<taskqueue b>', 'queue', 'defined twice'),
    ('<taskqueue default>\n</taskqueue>\n<taskqueue-server a>\n  name w\n'
     '</taskqueue-server>\n<taskqueue-server b>\n  name w\n'
     '</taskqueue-server>', '<taskqueue-server b>', 'name', 'two consumers'),
])
def test_what_depends_on_several_keys_is_checked_at_startup(
        zope_conf, text, section, key, message):
    product_config = zope_conf(text)
    with pytest.raises(ConfigurationError) as raised:
        zconfig.configuration(product_config, '/srv/zope/etc/zope.conf')
    error = raised.value
    assert (error.filename, error.section, error.key) == (
        '/srv/zope/etc/zope.conf', section, key)
    assert message in str(error)


def test_sections_of_other_products_are_left_alone(zope_conf, schema,
                                                   tmp_path):
    product_config = zope_conf('<taskqueue q>\n</taskqueue>')
    product_config['other'] = object()
    assert list(zconfig.configuration(product_config).queues) == ['q']
    assert isinstance(zconfig.configuration(product_config).queues['q'],
                      wsgi_taskqueue.LocalQueue)


def test_the_operator_commands_name_the_line_of_a_bad_zope_conf(tmp_path,
                                                                capsys):
    from wsgi_taskqueue.cli import main

    zope_conf = tmp_path / 'zope.conf'
    zope_conf.write_text(f'instancehome {tmp_path}\n'
                         '%import wsgi_taskqueue\n'
                         '<taskqueue default>\n  type redis\n  port many\n'
                         '</taskqueue>\n')
    assert main(['status', str(zope_conf)]) == 2
    error = capsys.readouterr().err
    assert "port: bad value 'many'" in error
    assert f'line 5, in file://{zope_conf}' in error


def test_the_sql_keys_mean_what_they_mean_in_an_ini(zope_conf, tmp_path):
    values = {'type': 'sqlite', 'url': f'sqlite:///{tmp_path}/tasks.db',
              'table_prefix': 'app_tq_', 'timeout': '2',
              'poll_interval': '0.25', 'outbox': 'false',
              'session': 'myapp.models.DBSession', 'secret': 's3cret'}
    from_zope = zconfig.configuration(zope_conf(
        '<taskqueue q>\n' + '\n'.join(f'  {k} {v}' for k, v in
                                      values.items()) + '\n</taskqueue>\n'))
    ini = tmp_path / 'app.ini'
    ini.write_text('[taskqueue:q]\n' + ''.join(f'{k} = {v}\n'
                                              for k, v in values.items()))
    from_ini = config.load(str(ini))
    zope_queue, ini_queue = from_zope.queues['q'], from_ini.queues['q']
    assert plain_attributes(zope_queue) == plain_attributes(ini_queue)
    for queue in (zope_queue, ini_queue):
        assert (queue.where, queue.store.tables.prefix,
                queue.store.wakeups.poll_interval, queue.app_session) == (
            values['url'], 'app_tq_', 0.25, None)
        queue.close()
