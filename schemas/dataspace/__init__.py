"""The bus's agreements and consents in the data space's standard forms.

* :mod:`schemas.dataspace.profile`: our ODRL 2.2 profile (identifiers, the one constraint type
  ODRL lacks: the fields a partner may receive), its JSON-LD context and SHACL shapes;
* :mod:`schemas.dataspace.odrl`: agreements to ODRL ``Agreement`` policies and back, and a small
  evaluator of the profile's subset (the same share/drop decision as the bus's routing);
* :mod:`schemas.dataspace.policy`: reading one policy of the profile, or refusing it with reasons;
* :mod:`schemas.dataspace.dsp`: the Dataspace Protocol catalogue (one dataset per venue and event
  type, each with its offers);
* :mod:`schemas.dataspace.prometheus_x`: a Prometheus-X contract into an agreement, refusing what
  the bus cannot enforce and listing what is lost.

Everything here is pure: JSON in, JSON or an :class:`~schemas.agreements.Agreement` out, no I/O
beyond reading the profile files shipped with the package.
"""
