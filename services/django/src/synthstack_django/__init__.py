"""SynthStack's Django REST Framework adapter: the core's operations served by Django.

``synthstack_django.settings`` configures Django, ``synthstack_django.urls`` routes every
operation of the core's registry to :class:`~synthstack_django.views.OperationView`, and the admin
manages the core's tenants and API keys. Run it with any WSGI server::

    gunicorn synthstack_django.wsgi:application

or manage it with ``python -m synthstack_django <command>`` (``migrate``, ``createsuperuser``, ...).

Inside an existing Django project, add ``"synthstack_django"`` (and ``"rest_framework"``) to
``INSTALLED_APPS`` and ``path("ml/", include("synthstack_django.urls"))`` to the URLs:
``manage.py migrate`` then brings the core's schema up to date, and
:mod:`synthstack_django.rest` gives the host's own views SynthStack's key authentication and
problem+json.
"""
