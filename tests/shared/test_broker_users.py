

def test_the_users_are_the_registrys_services():
    from services import registry
    assert set(b.SERVICES) == {s.name for s in registry.SERVICES}
    assert set(b.RPC_SERVERS) == {s.name for s in registry.SERVICES if s.nameko}
