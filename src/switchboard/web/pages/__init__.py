"""Console pages, one module per page (or small family of pages)."""

from switchboard.web.pages import admin, auth_pages, calls, campaigns, live, reports, scenarios, studio

ROUTERS = [auth_pages.router, live.router, calls.router, campaigns.router, scenarios.router, studio.router,
           reports.router, admin.router]
