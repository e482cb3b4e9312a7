import { libvirtSuite } from './suite.js';

libvirtSuite('libvirt12');
