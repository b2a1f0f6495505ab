package io.protolake.interop.apicurio;

import java.util.List;

import javax.enterprise.context.ApplicationScoped;
import javax.enterprise.inject.Produces;

import io.apicurio.common.apps.config.DynamicConfigPropertyList;

/**
 * Stands in for the build step of apicurio-common-app-components-config-index,
 * whose deployment artifact
 * (io.apicurio:apicurio-common-app-components-config-index-deployment:0.1.18.Final)
 * Maven Central does not serve here. That build step lists the registry's
 * {@code @Dynamic} configuration properties (those an admin may change at run
 * time through /apis/registry/v2/admin/config); this producer lists none, so
 * every property keeps the value it was started with. The interop tier
 * changes no property at run time.
 */
@ApplicationScoped
public class DynamicConfigProperties {
    @Produces
    @ApplicationScoped
    DynamicConfigPropertyList dynamicConfigProperties() {
        return new DynamicConfigPropertyList(List.of());
    }
}
