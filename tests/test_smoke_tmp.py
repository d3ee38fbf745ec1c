from tests.factories import make_patron, publish, standard_catalog


async def test_walkthrough(portal):
    await publish(standard_catalog())
    patron = await make_patron()
    client = portal.client
    r = await client.post("/signin", data={"card": patron.card, "pin": patron.pin})
    assert r.status_code == 303, r.text
    r = await client.get("/privacy")
    print(r.text)
    assert r.status_code == 200
    r = await client.get("/reading-history")
    print(r.text)
    assert r.status_code == 200
