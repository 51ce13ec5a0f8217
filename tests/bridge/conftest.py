from listeners import helpers

pki = helpers.pki  # the session's test certificates (CA, server, client)
