"""SynthStack's Django REST Framework adapter: the core's operations served by Django.

``synthstack_django.settings`` configures Django, ``synthstack_django.urls`` routes every
operation of the core's registry to :class:`~synthstack_django.views.OperationView`, and the admin
manages the core's tenants and API keys. Run it with any WSGI server::

    gunicorn synthstack_django.wsgi:application

or manage it with ``python -m synthstack_django <command>`` (``migrate``, ``createsuperuser``, ...).
"""
